// `npm run bench`: measures the raw limits of this machine and our path in one run, prints a table of
// figures with their ratios to the raw limits and the goals, and writes bench/results.json.
// Not a test: nothing here asserts; a piece that is missing or broken becomes an "unavailable" row.
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { BenchBuild } from './build';
import { CMatmul, EmulatorFigures, MATMUL_N, measureCMatmul, measureEmulator } from './emulatorBench';
import { PathBench, StepCount } from './pathBench';
import { killAll } from './proc';
import { median, RawProbe } from './rawLimits';
import { evaluate, renderTable, Row, Value } from './report';
import { repoPaths, RunningServer, snapshotIntercept, startServer } from './stack';

const ROOT = resolve(__dirname, '..', '..', '..');
const DEVICES = 'emulated:T4x2';
const LATENCY_ROUNDS = 3;

type Outcome<T> = { ok: true; value: T } | { ok: false; reason: string };

async function attempt<T>(what: string, f: () => Promise<T>): Promise<Outcome<T>> {
  const t0 = performance.now();
  process.stderr.write(`[bench] ${what}...`);
  try {
    const value = await f();
    process.stderr.write(` ${((performance.now() - t0) / 1e3).toFixed(1)} s\n`);
    return { ok: true, value };
  } catch (e) {
    const reason = e instanceof Error ? e.message.split('\n')[0] : String(e);
    process.stderr.write(` unavailable: ${reason}\n`);
    return { ok: false, reason };
  }
}

/** Median of the rounds that produced a number; unavailable (with the first reason) if none did. */
function medianOf(os: Outcome<number>[]): Value {
  const xs = os.flatMap((o) => (o.ok ? [o.value] : []));
  if (xs.length) return median(xs);
  const bad = os.find((o): o is { ok: false; reason: string } => !o.ok);
  return { unavailable: bad?.reason ?? 'not measured' };
}

function pick(o: Outcome<unknown>, key: string): Value {
  if (!o.ok) return { unavailable: o.reason };
  const v = (o.value as Record<string, unknown>)[key];
  return typeof v === 'number' ? v : { unavailable: `${key} missing from the result` };
}

async function main(): Promise<void> {
  const started = Date.now();
  const build = new BenchBuild(join(ROOT, 'bench'));
  let paths = repoPaths(ROOT);
  try {
    paths = snapshotIntercept(paths, build.dir);
  } catch {
    // Missing: every row that needs it says so (requireIntercept) while the raw limits still run.
  }
  let server: RunningServer | null = null;
  try {
    await attempt('building the C and CUDA programs', () => build.prebuild(['tcp_echo', 'tcp_ping', 'tcp_bw', 'matmul'], ['path_bench', 'emu_bench'], ['emu_bench']));
    const rawProbe = new RawProbe(build);
    const rawTcpRun = await attempt('raw TCP bandwidth (C)', () => rawProbe.bandwidth());
    const cMatmulRun = await attempt<CMatmul>('C matmul reference', () => measureCMatmul(build));
    const srv = await attempt('GPU server (rgpu serve)', () => startServer(paths, DEVICES));
    if (srv.ok) server = srv.value;
    const noServer: { ok: false; reason: string } = { ok: false, reason: srv.ok ? '' : srv.reason };
    const bench = new PathBench(build, paths);
    const probe = server ? await attempt('first session', () => bench.probe(server!)) : noServer;
    if (!probe.ok) {
      await server?.stop();
      server = null;
      noServer.reason = probe.reason;
    }
    const on = <T>(what: string, f: (s: RunningServer) => Promise<T>): Promise<Outcome<T>> => (server ? attempt(what, () => f(server!)) : Promise.resolve(noServer));
    // Latency figures are taken in rounds that alternate the routes, so a burst of load on this shared VM
    // lands on all of them alike; each figure is the median of its per-round p50s.
    const rounds = { rawRtt: [] as Outcome<number>[], rawTwoHop: [] as Outcome<number>[], proxy: [] as Outcome<number>[], direct: [] as Outcome<number>[], cRelay: [] as Outcome<number>[] };
    const syncCalls = { proxy: [] as Outcome<{ call: string; figures: Record<string, number> }>[], direct: [] as Outcome<{ call: string; figures: Record<string, number> }>[] };
    for (let r = 1; r <= LATENCY_ROUNDS; r++) {
      rounds.rawRtt.push(await attempt(`round ${r}: raw RTT`, async () => (await rawProbe.rtt()).p50));
      rounds.rawTwoHop.push(await attempt(`round ${r}: raw two-hop RTT`, async () => (await rawProbe.twoHopRtt()).p50));
      const p = await on(`round ${r}: sync calls via proxy (rgpu run)`, (s) => bench.sync('proxy', s));
      rounds.proxy.push(p.ok ? { ok: true, value: p.value.figures.sync_rtt_us } : p);
      const d = await on(`round ${r}: sync calls direct`, (s) => bench.sync('direct', s));
      rounds.direct.push(d.ok ? { ok: true, value: d.value.figures.sync_rtt_us } : d);
      rounds.cRelay.push(await on(`round ${r}: sync calls through a C relay`, async (s) => (await bench.syncViaCRelay(s)).sync_rtt_us));
      syncCalls.proxy.push(p);
      syncCalls.direct.push(d);
    }
    const callOf = (route: 'proxy' | 'direct'): string => {
      const first = syncCalls[route].find((o) => o.ok);
      return first?.ok ? first.value.call : 'trivial sync';
    };
    // Bulk figures route after route: each takes the whole machine for tens of seconds.
    const copyProxy = await on('256 MiB copies via proxy', (s) => bench.copy('proxy', s));
    const copyDirect = await on('256 MiB copies direct', (s) => bench.copy('direct', s));
    const copyRelay = await on('256 MiB copies through the proxy relay (no data lane)', (s) => bench.copy('proxy', s, { lane: false }));
    const copyEmbedded = await on('256 MiB copies on the embedded default (Unix socket)', (s) => bench.copy('embedded', s));
    const launchProxy = await on('200k launches via proxy', (s) => bench.launch('proxy', s));
    const launchDirect = await on('200k launches direct', (s) => bench.launch('direct', s));
    const stepsProxy = await on<StepCount>('round trips per step via proxy', (s) => bench.stepCount('proxy', s));
    const stepsDirect = await on<StepCount>('round trips per step direct', (s) => bench.stepCount('direct', s));
    const emu: Outcome<EmulatorFigures> = !cMatmulRun.ok
      ? cMatmulRun
      : server
        ? await attempt('emulator', () => measureEmulator(build, paths, server!, cMatmulRun.value))
        : noServer;

    const rawRtt = medianOf(rounds.rawRtt);
    const rawTwoHop = medianOf(rounds.rawTwoHop);
    const rawTcp = pick(rawTcpRun, 'MBps');
    const cMatmul = pick(cMatmulRun, 'ms');
    const G = 1e9;
    const rows: Row[] = [
      { key: 'raw_rtt_us', label: 'raw C<->C TCP 64 B RTT p50', value: rawRtt, unit: 'us' },
      { key: 'raw_two_hop_rtt_us', label: 'raw C->C relay->C echo RTT p50', value: rawTwoHop, unit: 'us', ratioTo: { key: 'raw_rtt_us', value: rawRtt } },
      { key: 'raw_tcp_MBps', label: 'raw TCP C->C 256 MiB, 1 MiB writes', value: rawTcp, unit: 'MB/s' },
      {
        key: 'sync_rtt_us',
        label: `sync call p50 via proxy (${callOf('proxy')})`,
        value: medianOf(rounds.proxy),
        unit: 'us',
        ratioTo: { key: 'raw_two_hop_rtt_us', value: rawTwoHop },
        goal: { text: '<= 2x raw two-hop', pass: (_v, r) => r !== undefined && r <= 2 },
      },
      {
        key: 'sync_rtt_direct_us',
        label: `sync call p50 direct (${callOf('direct')})`,
        value: medianOf(rounds.direct),
        unit: 'us',
        ratioTo: { key: 'raw_rtt_us', value: rawRtt },
        goal: { text: '<= 2x raw RTT', pass: (_v, r) => r !== undefined && r <= 2 },
      },
      {
        key: 'sync_rtt_c_relay_us',
        label: 'sync call p50 via a C relay (cudaStreamQuery)',
        value: medianOf(rounds.cRelay),
        unit: 'us',
        ratioTo: { key: 'raw_two_hop_rtt_us', value: rawTwoHop },
      },
      { key: 'h2d_MBps', label: 'HtoD 256 MiB via proxy (data lane)', value: pick(copyProxy, 'h2d_MBps'), unit: 'MB/s', ratioTo: { key: 'raw_tcp_MBps', value: rawTcp }, goal: { text: '>= 0.5x raw TCP', pass: (_v, r) => r !== undefined && r >= 0.5 } },
      { key: 'd2h_MBps', label: 'DtoH 256 MiB via proxy (data lane)', value: pick(copyProxy, 'd2h_MBps'), unit: 'MB/s', ratioTo: { key: 'raw_tcp_MBps', value: rawTcp }, goal: { text: '>= 0.5x raw TCP', pass: (_v, r) => r !== undefined && r >= 0.5 } },
      { key: 'h2d_relay_MBps', label: 'HtoD 256 MiB via proxy relay (REMOTE_GPU_LANE=0)', value: pick(copyRelay, 'h2d_MBps'), unit: 'MB/s', ratioTo: { key: 'raw_tcp_MBps', value: rawTcp } },
      { key: 'd2h_relay_MBps', label: 'DtoH 256 MiB via proxy relay (REMOTE_GPU_LANE=0)', value: pick(copyRelay, 'd2h_MBps'), unit: 'MB/s', ratioTo: { key: 'raw_tcp_MBps', value: rawTcp } },
      // The route `npm start` and a notebook with no pool take: its lane is a Unix socket, so it may beat raw TCP.
      { key: 'h2d_embedded_MBps', label: 'HtoD 256 MiB, embedded default (Unix-socket lane)', value: pick(copyEmbedded, 'h2d_MBps'), unit: 'MB/s', ratioTo: { key: 'raw_tcp_MBps', value: rawTcp } },
      { key: 'd2h_embedded_MBps', label: 'DtoH 256 MiB, embedded default (Unix-socket lane)', value: pick(copyEmbedded, 'd2h_MBps'), unit: 'MB/s', ratioTo: { key: 'raw_tcp_MBps', value: rawTcp } },
      { key: 'h2d_direct_MBps', label: 'HtoD 256 MiB direct', value: pick(copyDirect, 'h2d_MBps'), unit: 'MB/s', ratioTo: { key: 'raw_tcp_MBps', value: rawTcp }, goal: { text: '>= 0.5x raw TCP', pass: (_v, r) => r !== undefined && r >= 0.5 } },
      { key: 'd2h_direct_MBps', label: 'DtoH 256 MiB direct', value: pick(copyDirect, 'd2h_MBps'), unit: 'MB/s', ratioTo: { key: 'raw_tcp_MBps', value: rawTcp }, goal: { text: '>= 0.5x raw TCP', pass: (_v, r) => r !== undefined && r >= 0.5 } },
      { key: 'launches_per_s', label: 'empty launches/s via proxy (200k + sync)', value: pick(launchProxy, 'launches_per_s'), unit: '/s', goal: { text: '>= 200,000/s', pass: (v) => v >= 200_000 } },
      { key: 'launches_per_s_direct', label: 'empty launches/s direct (200k + sync)', value: pick(launchDirect, 'launches_per_s'), unit: '/s', goal: { text: '>= 200,000/s', pass: (v) => v >= 200_000 } },
      { key: 'sync_round_trips_per_step', label: 'round trips per step via proxy (counted)', value: pick(stepsProxy, 'roundTripsPerStep'), unit: 'RT', goal: { text: 'exactly 1', pass: (v) => v === 1 } },
      { key: 'sync_round_trips_per_step_direct', label: 'round trips per step direct (counted)', value: pick(stepsDirect, 'roundTripsPerStep'), unit: 'RT', goal: { text: 'exactly 1', pass: (v) => v === 1 } },
      { key: 'step_us', label: 'step time via proxy (3 launches, 2 copies, sync)', value: pick(stepsProxy, 'stepUs'), unit: 'us', ratioTo: { key: 'raw_two_hop_rtt_us', value: rawTwoHop } },
      { key: 'emu_matmul_tips_wall', label: `emulated tiled matmul ${MATMUL_N}^3, wall clock`, value: pick(emu, 'emu_matmul_tips'), unit: 'thr-instr/s' },
      { key: 'emu_matmul_tips', label: `emulated tiled matmul ${MATMUL_N}^3, per server CPU-s`, value: pick(emu, 'emu_matmul_tips_per_core'), unit: 'thr-instr/s/core', goal: { text: '>= 0.5 G/s per core', pass: (v) => v >= 0.5 * G } },
      { key: 'emu_reduce_tips_wall', label: 'emulated reduction 4M floats, wall clock', value: pick(emu, 'emu_reduce_tips'), unit: 'thr-instr/s' },
      { key: 'emu_reduce_tips', label: 'emulated reduction 4M floats, per server CPU-s', value: pick(emu, 'emu_reduce_tips_per_core'), unit: 'thr-instr/s/core', goal: { text: '>= 0.5 G/s per core', pass: (v) => v >= 0.5 * G } },
      { key: 'c_matmul_ms', label: `C -O2 triple loop matmul ${MATMUL_N}^3`, value: cMatmul, unit: 'ms' },
      { key: 'emu_server_cpu_share', label: 'server CPU-s per wall-s during the emulator run', value: pick(emu, 'emu_server_cpu_share'), unit: 'cores' },
      { key: 'emu_matmul_ms', label: `emulated matmul ${MATMUL_N}^3 (launch + sync)`, value: pick(emu, 'emu_matmul_ms'), unit: 'ms', ratioTo: { key: 'c_matmul_ms', value: cMatmul }, goal: { text: '<= 10x C loop', pass: (_v, r) => r !== undefined && r <= 10 } },
    ];
    const table = evaluate(rows);
    const flat: Record<string, unknown> = {};
    for (const r of table) {
      flat[r.key] = r.value;
      if (r.ratio !== undefined) flat[`${r.key}_ratio`] = r.ratio;
    }
    flat.emu_matmul_vs_c_ratio = pick(emu, 'emu_matmul_vs_c_ratio');
    const results = {
      ...flat,
      emu_matmul_vs_c_ratio: typeof flat.emu_matmul_vs_c_ratio === 'number' ? flat.emu_matmul_vs_c_ratio : null,
      rows: table,
      details: { rawTcp: rawTcpRun, latencyRounds: rounds, syncCalls, cMatmul: cMatmulRun, firstSessionFailures: probe, copyProxy, copyDirect, copyRelay, launchProxy, launchDirect, stepsProxy, stepsDirect, emu },
      machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg(), node: process.version },
      started: new Date(started).toISOString(),
      durationS: (Date.now() - started) / 1e3,
    };
    const out = join(ROOT, 'bench', 'results.json');
    writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(`${renderTable(table)}\n\nload average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${results.durationS.toFixed(0)} s; details in ${out}\n`);
  } finally {
    await server?.stop();
    build.dispose();
  }
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    // The GPU server may be inside a long kernel and deaf to SIGTERM; leave nothing running.
    killAll();
    process.exit(130);
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exitCode = 1;
});
