// Throughput probe for the server's data path (not a test): H2D/D2H MB/s through TestClient against an
// emulated T4, a raw loopback TCP baseline, and launches/s of an empty kernel sent as batched no-reply
// LAUNCH frames followed by one CTX_SYNC. The server runs in a child process so that client and server
// each get their own thread, as in production.
//   node out/test/helpers/dataPathProbe.js [MiB...]      (SERVER_ARGS="--cpu-prof" to profile the server)
import { fork } from 'node:child_process';
import * as net from 'node:net';
import { encodeFrame } from '../../gpu-runtime/protocol/ts/codec';
import { encodeLaunchArgs, Flag, Op } from '../../gpu-runtime/protocol/generated/ops';
import { startServer } from '../../gpu-runtime/server/src/main';
import { TestClient } from './testClient';

const EMPTY_PTX = `.version 7.0
.target sm_75
.address_size 64
.visible .entry empty(.param .u64 p) { ret; }
`;

async function child(): Promise<void> {
  const server = await startServer({ port: 0, devices: 'emulated:T4' });
  const sink = net.createServer((s) => {
    let n = 0;
    s.on('data', (c: Buffer) => {
      n += c.length;
      if (n >= Number(process.env.SINK_BYTES)) s.write('k');
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  process.send!({ port: server.address.port, sink: (sink.address() as net.AddressInfo).port });
  process.on('message', async () => {
    sink.close();
    await server.close();
    process.exit(0);
  });
}

const mbs = (bytes: number, ms: number): string => `${((bytes / ms) * 1e-3).toFixed(0)} MB/s`;

async function rawTcp(port: number, bytes: number): Promise<number> {
  const s = net.connect(port, '127.0.0.1');
  await new Promise((r) => s.once('connect', r));
  const chunk = Buffer.alloc(1 << 20, 7);
  const t0 = performance.now();
  const done = new Promise((r) => s.once('data', r));
  for (let sent = 0; sent < bytes; sent += chunk.length) if (!s.write(chunk)) await new Promise((r) => s.once('drain', r));
  await done;
  s.destroy();
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const sizes = process.argv.slice(2).map(Number).filter((x) => x > 0);
  const mibs = sizes.length ? sizes : [64, 256];
  const maxBytes = Math.max(...mibs) * 2 ** 20;
  const execArgv = (process.env.SERVER_ARGS ?? '').split(' ').filter(Boolean);
  const cp = fork(__filename, ['--child'], { execArgv, env: { ...process.env, SINK_BYTES: String(maxBytes) } });
  const ports = await new Promise<{ port: number; sink: number }>((r) => cp.once('message', (m) => r(m as { port: number; sink: number })));
  try {
    for (let rep = 0; rep < 2; rep++) {
      const ms = await rawTcp(ports.sink, maxBytes);
      console.log(`raw TCP loopback ${maxBytes / 2 ** 20} MiB rep ${rep}: ${mbs(maxBytes, ms)}`);
    }
    const c = await TestClient.session(ports.port);
    // Replies land in one warm buffer, as the C client copies into the caller's memory.
    const landing = Buffer.alloc(64 * 2 ** 20);
    c.placer = (h) => (h.op === Op.MEMCPY_DTOH && h.length - h.bodyLen <= landing.length ? landing.subarray(0, h.length - h.bodyLen) : null);
    for (const mib of mibs) {
      const size = mib * 2 ** 20;
      const data = Buffer.alloc(size, 0x5a);
      data.writeUInt32LE(0xdeadbeef, size - 4);
      for (let rep = 0; rep < 2; rep++) {
        const t0 = performance.now();
        const d = c.alloc(size);
        const piece = 64 * 2 ** 20 - 64; // one frame's bulk at most
        for (let o = 0; o < size; o += piece) c.htod(d + o, data.subarray(o, Math.min(size, o + piece)));
        await c.sync();
        const t1 = performance.now();
        let got = 0;
        let last = 0;
        for (let o = 0; o < size; o += piece) {
          const b = await c.dtoh(d + o, Math.min(piece, size - o));
          got += b.length;
          last = b.readUInt32LE(b.length - 4);
        }
        const t2 = performance.now();
        if (got !== size || last !== 0xdeadbeef) throw new Error('short or wrong read');
        c.free(d);
        console.log(`${mib} MiB rep ${rep}: H2D (incl. alloc) ${mbs(size, t1 - t0)}, D2H ${mbs(size, t2 - t1)}`);
      }
    }
    const { module } = await c.loadModule(Buffer.from(EMPTY_PTX), 'ptx');
    const body = Buffer.allocUnsafe(40);
    encodeLaunchArgs(body, 0, { module, kernel: 0, gridX: 1, gridY: 1, gridZ: 1, blockX: 1, blockY: 1, blockZ: 1, sharedMem: 0, launchFlags: 0 });
    const frame = Buffer.concat(encodeFrame(Op.LAUNCH, { flags: Flag.NO_REPLY, body, bulk: Buffer.alloc(8) }));
    const perWrite = 512;
    const batch = Buffer.concat(Array.from({ length: perWrite }, () => frame));
    for (let rep = 0; rep < 3; rep++) {
      const n = 782 * perWrite;
      const t0 = performance.now();
      for (let i = 0; i < n; i += perWrite) if (!c.socket.write(batch)) await new Promise((r) => c.socket.once('drain', r));
      await c.sync();
      const ms = performance.now() - t0;
      console.log(`launches: ${((n / ms) * 1000).toFixed(0)}/s (${n} in ${ms.toFixed(0)} ms)`);
    }
    c.close();
  } finally {
    cp.send('stop');
  }
}

if (process.argv.includes('--child')) void child();
else main().catch((e) => {
  console.error(e);
  process.exit(1);
});
