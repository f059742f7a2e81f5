// `npm run bench`: measures the raw limits of this machine and our path in one run, prints a table of
// figures with their ratios to the raw limits and the goals, and writes bench/results.json.
// Not a test: nothing here asserts; a piece that is missing or broken becomes an "unavailable" row.
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { BenchBuild } from './build';
import { CMatmul, EmulatorFigures, measureCMatmul, measureEmulator } from './emulatorBench';
import { Measured, PathBench, PathFigures, StepCount } from './pathBench';
import { killAll } from './proc';
import { measureRawLimits, RawLimits } from './rawLimits';
import { evaluate, renderTable, Row, Value } from './report';
import { repoPaths, RunningServer, startServer } from './stack';

const ROOT = resolve(__dirname, '..', '..', '..');
const DEVICES = 'emulated:T4x2';

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

function pick(o: Outcome<unknown> | Measured<Record<string, number>>, key: string): Value {
  if (!o.ok) return { unavailable: o.reason };
  const v = (o.value as Record<string, unknown>)[key];
  return typeof v === 'number' ? v : { unavailable: `${key} missing from the result` };
}

function sub(o: Outcome<PathFigures>, part: 'sync' | 'copy' | 'launch'): Measured<Record<string, number>> {
  return o.ok ? o.value[part] : o;
}

async function main(): Promise<void> {
  const started = Date.now();
  const paths = repoPaths(ROOT);
  const build = new BenchBuild(join(ROOT, 'bench'));
  let server: RunningServer | null = null;
  try {
    const raw = await attempt<RawLimits>('raw limits (C)', () => measureRawLimits(build));
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
    const proxy = server ? await attempt('path via proxy (rgpu run)', () => bench.figures('proxy', server!)) : noServer;
    const direct = server ? await attempt('path direct to server', () => bench.figures('direct', server!)) : noServer;
    const stepsProxy = server ? await attempt<StepCount>('round trips per step via proxy', () => bench.stepCount('proxy', server!)) : noServer;
    const stepsDirect = server ? await attempt<StepCount>('round trips per step direct', () => bench.stepCount('direct', server!)) : noServer;
    const emu: Outcome<EmulatorFigures> = !cMatmulRun.ok
      ? cMatmulRun
      : server
        ? await attempt('emulator', () => measureEmulator(build, paths, server!, cMatmulRun.value))
        : noServer;

    const rawRtt = pick(raw, 'raw_rtt_us');
    const rawTwoHop = pick(raw, 'raw_two_hop_rtt_us');
    const rawTcp = pick(raw, 'raw_tcp_MBps');
    const cMatmul = pick(cMatmulRun, 'ms');
    const G = 1e9;
    const rows: Row[] = [
      { key: 'raw_rtt_us', label: 'raw C<->C TCP 64 B RTT p50', value: rawRtt, unit: 'us' },
      { key: 'raw_two_hop_rtt_us', label: 'raw C->C relay->C echo RTT p50', value: rawTwoHop, unit: 'us', ratioTo: { key: 'raw_rtt_us', value: rawRtt } },
      { key: 'raw_tcp_MBps', label: 'raw TCP C->C 256 MiB, 1 MiB writes', value: rawTcp, unit: 'MB/s' },
      {
        key: 'sync_rtt_us',
        label: `sync call p50 via proxy (${proxy.ok ? proxy.value.syncCall : 'trivial sync'})`,
        value: pick(sub(proxy, 'sync'), 'sync_rtt_us'),
        unit: 'us',
        ratioTo: { key: 'raw_two_hop_rtt_us', value: rawTwoHop },
        goal: { text: '<= 2x raw two-hop', pass: (_v, r) => r !== undefined && r <= 2 },
      },
      {
        key: 'sync_rtt_direct_us',
        label: `sync call p50 direct (${direct.ok ? direct.value.syncCall : 'trivial sync'})`,
        value: pick(sub(direct, 'sync'), 'sync_rtt_us'),
        unit: 'us',
        ratioTo: { key: 'raw_rtt_us', value: rawRtt },
        goal: { text: '<= 2x raw RTT', pass: (_v, r) => r !== undefined && r <= 2 },
      },
      { key: 'h2d_MBps', label: 'HtoD 256 MiB via proxy', value: pick(sub(proxy, 'copy'), 'h2d_MBps'), unit: 'MB/s', ratioTo: { key: 'raw_tcp_MBps', value: rawTcp }, goal: { text: '>= 0.5x raw TCP', pass: (_v, r) => r !== undefined && r >= 0.5 } },
      { key: 'd2h_MBps', label: 'DtoH 256 MiB via proxy', value: pick(sub(proxy, 'copy'), 'd2h_MBps'), unit: 'MB/s', ratioTo: { key: 'raw_tcp_MBps', value: rawTcp }, goal: { text: '>= 0.5x raw TCP', pass: (_v, r) => r !== undefined && r >= 0.5 } },
      { key: 'h2d_direct_MBps', label: 'HtoD 256 MiB direct', value: pick(sub(direct, 'copy'), 'h2d_MBps'), unit: 'MB/s', ratioTo: { key: 'raw_tcp_MBps', value: rawTcp }, goal: { text: '>= 0.5x raw TCP', pass: (_v, r) => r !== undefined && r >= 0.5 } },
      { key: 'd2h_direct_MBps', label: 'DtoH 256 MiB direct', value: pick(sub(direct, 'copy'), 'd2h_MBps'), unit: 'MB/s', ratioTo: { key: 'raw_tcp_MBps', value: rawTcp }, goal: { text: '>= 0.5x raw TCP', pass: (_v, r) => r !== undefined && r >= 0.5 } },
      { key: 'launches_per_s', label: 'empty launches/s via proxy (200k + sync)', value: pick(sub(proxy, 'launch'), 'launches_per_s'), unit: '/s', goal: { text: '>= 200,000/s', pass: (v) => v >= 200_000 } },
      { key: 'launches_per_s_direct', label: 'empty launches/s direct (200k + sync)', value: pick(sub(direct, 'launch'), 'launches_per_s'), unit: '/s', goal: { text: '>= 200,000/s', pass: (v) => v >= 200_000 } },
      { key: 'sync_round_trips_per_step', label: 'round trips per step via proxy (counted)', value: pick(stepsProxy, 'roundTripsPerStep'), unit: 'RT', goal: { text: 'exactly 1', pass: (v) => v === 1 } },
      { key: 'sync_round_trips_per_step_direct', label: 'round trips per step direct (counted)', value: pick(stepsDirect, 'roundTripsPerStep'), unit: 'RT', goal: { text: 'exactly 1', pass: (v) => v === 1 } },
      { key: 'step_us', label: 'step time via proxy (3 launches, 2 copies, sync)', value: pick(stepsProxy, 'stepUs'), unit: 'us', ratioTo: { key: 'raw_two_hop_rtt_us', value: rawTwoHop } },
      { key: 'emu_matmul_tips', label: `emulated tiled matmul ${256}^3`, value: pick(emu, 'emu_matmul_tips_per_core'), unit: 'thr-instr/s/core', goal: { text: '>= 0.5 G/s per core', pass: (v) => v >= 0.5 * G } },
      { key: 'emu_reduce_tips', label: 'emulated reduction 4M floats', value: pick(emu, 'emu_reduce_tips_per_core'), unit: 'thr-instr/s/core', goal: { text: '>= 0.5 G/s per core', pass: (v) => v >= 0.5 * G } },
      { key: 'c_matmul_ms', label: 'C -O2 triple loop matmul 256^3', value: cMatmul, unit: 'ms' },
      { key: 'emu_matmul_ms', label: 'emulated matmul 256^3 (launch + sync)', value: pick(emu, 'emu_matmul_ms'), unit: 'ms', ratioTo: { key: 'c_matmul_ms', value: cMatmul }, goal: { text: '<= 10x C loop', pass: (_v, r) => r !== undefined && r <= 10 } },
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
      details: { raw, cMatmul: cMatmulRun, firstSessionFailures: probe, proxy, direct, stepsProxy, stepsDirect, emu },
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
