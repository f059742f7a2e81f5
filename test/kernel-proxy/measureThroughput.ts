// Forwarding throughput of the kernel-proxy: small frames per second (batched writes) and bulk MB/s each
// way, through the proxy and, for reference, straight to the pool. Client, proxy and sink are separate
// processes. Run: node out/test/kernel-proxy/measureThroughput.js [--frames N] [--mib N]
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Flag, Op, PROTOCOL_VERSION } from '../../gpu-runtime/protocol/generated/ops';
import { encodeFrame, packArgs } from '../../gpu-runtime/protocol/ts/codec';
import { FrameScanner } from '../../kernel-proxy/src/frameScanner';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const FRAMES = arg('frames', 1_000_000);
const MIB = arg('mib', 512);
const BATCH = 160; // 200-byte frames per client write, as in the transport facts (N9/N12)
const CLI = path.resolve(__dirname, '..', '..', 'gpu-runtime', 'cli', 'src', 'main.js');

function startChild(args: string[]): Promise<{ child: ChildProcess; line: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const onData = (s: Buffer): void => {
      out += s.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve({ child, line: m[1] });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (c) => reject(new Error(`${args.join(' ')} exited ${c}: ${out}`)));
  });
}

class Conn {
  private waiting = new Map<number, () => void>();
  private readonly scanner: FrameScanner;
  bulkIn = 0;
  constructor(readonly sock: net.Socket) {
    this.scanner = new FrameScanner({
      onHeader: (op, flags, seq, length, bodyLen) => {
        if (op === Op.MEMCPY_DTOH) this.bulkIn += length - bodyLen;
        if (flags & Flag.REPLY) this.waiting.get(seq)?.();
        return false;
      },
      onBody: () => {},
    });
    sock.on('data', (c: Buffer) => this.scanner.scan(c));
  }
  reply(seq: number): Promise<void> {
    return new Promise((r) => this.waiting.set(seq, r));
  }
  async write(b: Buffer | Buffer[]): Promise<void> {
    let ok = true;
    for (const x of Array.isArray(b) ? b : [b]) ok = this.sock.write(x);
    if (!ok) await new Promise((r) => this.sock.once('drain', r));
  }
}

async function connect(target: { path?: string; port?: number }): Promise<Conn> {
  const sock = await new Promise<net.Socket>((resolve, reject) => {
    const s = target.path ? net.connect(target.path) : net.connect(target.port!, '127.0.0.1');
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
  sock.setNoDelay(true);
  const c = new Conn(sock);
  const body = packArgs(Op.HELLO, { version: PROTOCOL_VERSION, token: '', gpuType: '', purpose: 'session', client: { pid: process.pid, argv0: 'bench' } });
  const r = c.reply(1);
  await c.write(encodeFrame(Op.HELLO, { seq: 1, body })[0]);
  await r;
  return c;
}

async function smallFrames(c: Conn): Promise<number> {
  const one = Buffer.concat(encodeFrame(Op.LAUNCH, { flags: Flag.NO_REPLY, body: Buffer.alloc(40), bulk: Buffer.alloc(136) }));
  const batch = Buffer.concat(Array.from({ length: BATCH }, () => one));
  const t0 = performance.now();
  for (let sent = 0; sent < FRAMES; sent += BATCH) await c.write(batch);
  const done = c.reply(2);
  await c.write(encodeFrame(Op.CTX_SYNC, { seq: 2 })[0]);
  await done;
  return (Math.ceil(FRAMES / BATCH) * BATCH) / ((performance.now() - t0) / 1000);
}

/** p50 and p99 of sequential CTX_SYNC round trips, in microseconds. */
async function roundTrips(c: Conn, n = 2000): Promise<[number, number]> {
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const seq = 100000 + i;
    const done = c.reply(seq);
    const t0 = performance.now();
    await c.write(encodeFrame(Op.CTX_SYNC, { seq })[0]);
    await done;
    t.push((performance.now() - t0) * 1000);
  }
  t.sort((a, b) => a - b);
  return [Math.round(t[n >> 1]), Math.round(t[Math.floor(n * 0.99)])];
}

async function bulkUp(c: Conn): Promise<number> {
  const chunk = 16 << 20;
  const bulk = Buffer.alloc(chunk, 1);
  const head = Buffer.alloc(8);
  const t0 = performance.now();
  for (let i = 0; i < MIB / 16; i++) await c.write(encodeFrame(Op.MEMCPY_HTOD, { flags: Flag.NO_REPLY, body: head, bulk }));
  const done = c.reply(3);
  await c.write(encodeFrame(Op.CTX_SYNC, { seq: 3 })[0]);
  await done;
  return (MIB * 1048576) / 1e6 / ((performance.now() - t0) / 1000);
}

async function bulkDown(c: Conn): Promise<number> {
  const chunk = 16 << 20;
  const body = Buffer.alloc(16);
  body.writeUInt32LE(chunk, 8);
  const t0 = performance.now();
  // Four copies in flight, as a pipelining client would keep them.
  let seq = 10;
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < MIB / 16; i++) {
    const s = seq++;
    inflight.push(c.reply(s));
    await c.write(encodeFrame(Op.MEMCPY_DTOH, { seq: s, body })[0]);
    if (inflight.length >= 4) await inflight.shift();
  }
  await Promise.all(inflight);
  return (MIB * 1048576) / 1e6 / ((performance.now() - t0) / 1000);
}

/** CPU seconds (user+system) a process has used so far, from /proc (Linux). */
function cpuSeconds(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}

async function main(): Promise<void> {
  const sink = await startChild([path.join(__dirname, 'throughputSink.js')]);
  const port = Number(sink.line.split(':')[1]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-tp-'));
  const socket = path.join(dir, 'proxy.sock');
  // RGPU_PROF_DIR=dir: write a V8 CPU profile of the proxy there.
  const prof = process.env.RGPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.RGPU_PROF_DIR}`] : [];
  const proxy = await startChild([...prof, CLI, 'proxy', '--pool', `tcp://127.0.0.1:${port}`, '--socket', socket]);
  const results: Record<string, Record<string, number>> = {};
  try {
    for (const [name, target] of [['through proxy', { path: socket }], ['direct to pool', { port }]] as const) {
      const r: Record<string, number> = {};
      const viaProxy = 'path' in target;
      const pid = proxy.child.pid;
      let c = await connect(target);
      [r['sync RTT p50 us'], r['sync RTT p99 us']] = await roundTrips(c);
      let cpu0 = cpuSeconds(pid);
      r['200 B frames/s (160 per write)'] = Math.round(await smallFrames(c));
      if (viaProxy) r['proxy CPU ns per 200 B frame'] = Math.round(((cpuSeconds(pid) - cpu0) * 1e9) / FRAMES);
      c.sock.destroy();
      c = await connect(target);
      cpu0 = cpuSeconds(pid);
      r['bulk H2D MB/s (16 MiB frames)'] = Math.round(await bulkUp(c));
      if (viaProxy) r['proxy CPU ms per MB H2D'] = Math.round(((cpuSeconds(pid) - cpu0) * 1e6) / (MIB * 1.048576)) / 1000;
      cpu0 = cpuSeconds(pid);
      r['bulk D2H MB/s (16 MiB replies)'] = Math.round(await bulkDown(c));
      if (viaProxy) r['proxy CPU ms per MB D2H'] = Math.round(((cpuSeconds(pid) - cpu0) * 1e6) / (MIB * 1.048576)) / 1000;
      c.sock.destroy();
      results[name] = r;
    }
  } finally {
    proxy.child.kill('SIGTERM');
    sink.child.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`frames=${FRAMES} bulk=${MIB} MiB load=${os.loadavg()[0].toFixed(1)}\n${JSON.stringify(results, null, 2)}\n`);
}

void main().then(() => process.exit(0), (e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
