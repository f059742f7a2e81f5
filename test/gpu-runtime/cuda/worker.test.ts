// The CUDA backend's per-session worker processes, through a two-server chain: an outer `rgpu serve --devices
// cuda` whose libcuda is OUR intercept, talking to an inner emulated server. The intercept writes device printf
// to its process's stdout at synchronisation points, as the real driver does, so this checks for real that
// each session's printf comes back to that session's client as PRINTF notifications, and that a dead worker
// ends only its own session.

import { strict as assert } from 'node:assert';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CUresult } from '../../../gpu-runtime/protocol/generated/cuResult';
import { encodeMemcpyDtoh2dLaneArgs, encodeMemcpyHtod2dLaneArgs, Op } from '../../../gpu-runtime/protocol/generated/ops';
import { ensureIntercept, expectOk, interceptEnv, nvcc, run } from '../../cuda/programs';
import { waitFor } from '../../helpers/serverFixture';
import { LaneSocket } from '../../helpers/laneSocket';
import { ReplyError, TestClient } from '../../helpers/testClient';
import { CLI, serve, serveCudaOver, stop, type Served } from './chain';

const KERNELS = `
#include <cstdio>
extern "C" __global__ void say(int tag, int round) {
  printf("session %d round %d thread %d\\n", tag, round, (int)threadIdx.x);
}
extern "C" __global__ void twice(int *x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= 2;
}
`;

/** The pids holding the IPv4 TCP socket local:remote (loopback ports), from /proc. */
function tcpOwners(localPort: number, remotePort: number): number[] {
  const hex = (p: number): string => p.toString(16).toUpperCase().padStart(4, '0');
  const row = readFileSync('/proc/net/tcp', 'utf8').split('\n').find((l) => {
    const f = l.trim().split(/\s+/);
    return f[1]?.endsWith(`:${hex(localPort)}`) && f[2]?.endsWith(`:${hex(remotePort)}`);
  });
  const inode = row?.trim().split(/\s+/)[9];
  const owners: number[] = [];
  if (!inode) return owners;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readdirSync(`/proc/${pid}/fd`).some((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`)) owners.push(Number(pid));
    } catch {
      // processes come and go, and others' fds are not ours to read
    }
  }
  return owners;
}

/** The worker processes of the outer server (its child processes). */
function workers(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when there are none
  }
}

describe('cuda backend: one worker process per session (over the intercept)', function () {
  this.timeout(60000);
  let dir = '';
  let inner: Served | undefined;
  let outer: Served | undefined;
  let ptx: Buffer;

  before(async function () {
    this.timeout(120000);
    ensureIntercept();
    if (!existsSync(CLI)) throw new Error(`${CLI} missing: run npx tsc -p . first`);
    dir = mkdtempSync(join(tmpdir(), 'rgpu-cuda-worker-'));
    writeFileSync(join(dir, 'k.cu'), KERNELS);
    // One inner GPU per intercept process: each session's worker and the outer server's spare worker.
    const [started] = await Promise.all([
      serve(['--devices', 'emulated:T4x4']),
      promisify(execFile)('nvcc', ['-ptx', '-arch=sm_75', '-o', join(dir, 'k.ptx'), join(dir, 'k.cu')]),
    ]);
    inner = started;
    ptx = Buffer.from(readFileSync(join(dir, 'k.ptx'), 'utf8') + '\0');
    outer = await serveCudaOver(inner.port, ['--shared']);
  });

  after(async () => {
    await stop(outer);
    await stop(inner);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function open(): Promise<{ c: TestClient; say: number; twice: number; module: number }> {
    const c = await TestClient.session(outer!.port);
    const { module } = await c.loadModule(ptx, 'ptx');
    return { c, module, say: c.kernelIndex(module, 'say'), twice: c.kernelIndex(module, 'twice') };
  }

  it('serves the data path and delivers a kernel printf as PRINTF before the sync reply, not on the server stdout', async () => {
    const { c, module, say, twice } = await open();
    try {
      const n = 64;
      const x = c.alloc(n * 4);
      c.htod(x, new Uint8Array(new Int32Array(Array.from({ length: n }, (_, i) => i - 7)).buffer));
      c.launch(module, twice, [1], [n], [x, n]);
      c.launch(module, say, [1], [3], [7, 1]);
      await c.sync();
      const back = await c.dtoh(x, n * 4);
      assert.deepEqual(Array.from({ length: n }, (_, i) => back.readInt32LE(4 * i)), Array.from({ length: n }, (_, i) => 2 * (i - 7)));
      // A large read lands in the reply buffer as it arrives from the worker (placement), a small one is copied.
      const big = 1 << 20;
      const y = c.alloc(big);
      const pattern = Buffer.alloc(big);
      for (let i = 0; i < big; i += 4) pattern.writeUInt32LE((i * 2654435761) >>> 0, i);
      c.htod(y, pattern);
      assert.ok((await c.dtoh(y, big)).equals(pattern), 'large read');
      assert.ok((await c.dtoh(y + 4, 100)).equals(pattern.subarray(4, 104)), 'small read');
      const text = c.printf.join('');
      for (let t = 0; t < 3; t++) assert.match(text, new RegExp(`session 7 round 1 thread ${t}\\n`));
      assert.equal(text.split('\n').filter(Boolean).length, 3, text);
      assert.ok(!outer!.stdout.join('').includes('session 7'), `printf leaked to the server's stdout: ${outer!.stdout.join('')}`);
    } finally {
      c.close();
    }
  });

  it('attributes printf to the right session when two sessions print concurrently', async () => {
    const a = await open();
    const b = await open();
    try {
      const rounds = 6;
      const syncs: Promise<void>[] = [];
      for (let r = 0; r < rounds; r++) {
        a.c.launch(a.module, a.say, [1], [2], [1, r]);
        b.c.launch(b.module, b.say, [1], [2], [2, r]);
        syncs.push(a.c.sync(), b.c.sync());
      }
      await Promise.all(syncs);
      for (const [s, tag] of [[a, 1], [b, 2]] as const) {
        const lines = s.c.printf.join('').split('\n').filter(Boolean);
        const want = [];
        for (let r = 0; r < rounds; r++) for (let t = 0; t < 2; t++) want.push(`session ${tag} round ${r} thread ${t}`);
        // Threads of one launch may print in any order; rounds are separated by syncs.
        assert.deepEqual(lines.map((l) => l.replace(/thread \d/, 'thread')), want.map((l) => l.replace(/thread \d/, 'thread')), `session ${tag}`);
        assert.deepEqual([...lines].sort(), [...want].sort(), `session ${tag}`);
      }
    } finally {
      a.c.close();
      b.c.close();
    }
  });

  it('hands the data lane to the session\'s worker: copies bypass the server, in order, refused ones skipped', async () => {
    const { c, module, twice } = await open();
    try {
      const offer = c.hello!.lane!;
      const { lane, result } = await LaneSocket.attach(outer!.port, c.hello!.session, offer.ticket);
      assert.equal(result, 0);
      const n = 1 << 20;
      const x = c.alloc(n);
      const data = Buffer.alloc(n);
      for (let i = 0; i < n; i += 4) data.writeInt32LE(i - 1000, i);
      c.htodLane(x, n);
      lane.sock.write(data);
      c.launch(module, twice, [n / 4 / 256], [256], [x, n / 4]); // after the lane write, in stream order
      const r = await c.dtohLane(x, n);
      assert.equal(r.result, 0);
      const back = await lane.read(n);
      for (let i = 0; i < n; i += 4 * 997) assert.equal(back.readInt32LE(i), 2 * (i - 1000), `x[${i / 4}]`);
      // The server holds no end of the lane (it lets go once the worker acknowledged the handle): the worker does.
      const owners = (): number[] => tcpOwners(lane.sock.remotePort!, lane.sock.localPort!);
      await waitFor(() => !owners().includes(outer!.child.pid!), 5000, 'the server to let go of the lane');
      assert.ok(owners().some((p) => workers(outer!.child.pid!).includes(p)), `lane socket owned by ${owners()}, not by a worker of ${outer!.child.pid}`);
      // A refused copy's bytes are taken off the lane; its error comes at the next sync.
      c.htodLane(x + n / 2, n);
      lane.sock.write(Buffer.alloc(n, 7));
      await assert.rejects(c.sync(), (e: unknown) => e instanceof ReplyError && e.result === CUresult.CUDA_ERROR_INVALID_VALUE);
      const p2 = Buffer.alloc(n, 0x3c);
      c.htodLane(x, n);
      lane.sock.write(p2);
      assert.equal((await c.dtohLane(x, n)).result, 0);
      assert.ok((await lane.read(n)).equals(p2), 'the next copy is whole');
      // 2D: packed rows land at their pitch, and come back packed.
      const w = 1000, h = 300, pitch = 1024;
      const rows = Buffer.alloc(w * h);
      for (let i = 0; i < rows.length; i++) rows[i] = (i * 7) & 0xff;
      const body = Buffer.alloc(32);
      encodeMemcpyHtod2dLaneArgs(body, 0, { dst: x, dpitch: pitch, width: w, height: h });
      c.post(Op.MEMCPY_HTOD_2D_LANE, { body });
      lane.sock.write(rows);
      const flat = await c.dtoh(x, pitch * h);
      assert.ok(flat.subarray(pitch, pitch + w).equals(rows.subarray(w, 2 * w)) && flat[pitch - 1] === 0x3c, 'row 1 at its pitch, the gap untouched');
      encodeMemcpyDtoh2dLaneArgs(body, 0, { src: x, spitch: pitch, width: w, height: h });
      assert.equal((await c.requestRaw(Op.MEMCPY_DTOH_2D_LANE, { body })).result, 0);
      assert.ok((await lane.read(w * h)).equals(rows), '2D rows back, packed');
      lane.sock.destroy();
    } finally {
      c.close();
    }
  });

  it('an unmodified program connected directly takes a lane too, since its bytes skip the server', async function () {
    this.timeout(120000);
    const bin = await nvcc('streams.cu');
    const r = await run(bin, ['pipeline', '4'], { env: { ...interceptEnv(`tcp://127.0.0.1:${outer!.port}`), REMOTE_GPU_TRACE: '1' }, timeoutMs: 110000 });
    expectOk(r, 'pipeline through a CUDA worker');
    assert.equal(r.stdout, 'pipeline ok 4 MiB\n');
    assert.match(r.stderr, new RegExp(`data lane attached to 127\\.0\\.0\\.1:${outer!.port}`));
  });

  it('a killed worker fails its own session with LAUNCH_FAILED; the other session and new sessions carry on', async () => {
    // Only the spare worker is left; the next session takes it (and a new spare starts).
    await waitFor(() => workers(outer!.child.pid!).length === 1, 10000, 'earlier sessions\' workers gone');
    const [victim] = workers(outer!.child.pid!);
    const a = await open();
    assert.ok(workers(outer!.child.pid!).includes(victim), 'the spare became the session\'s worker');
    const b = await open();
    try {
      process.kill(victim, 'SIGKILL');
      await waitFor(() => !workers(outer!.child.pid!).includes(victim), 5000, 'worker gone');
      await assert.rejects(a.c.sync(), (e: unknown) => e instanceof ReplyError && e.result === CUresult.CUDA_ERROR_LAUNCH_FAILED);
      b.c.launch(b.module, b.say, [1], [1], [5, 0]);
      await b.c.sync();
      assert.match(b.c.printf.join(''), /session 5 round 0 thread 0/);
    } finally {
      a.c.close();
      b.c.close();
    }
    // The dead session's GPU went back to the pool.
    const c = await open();
    await c.c.sync();
    c.c.alloc(1 << 20);
    c.c.socket.destroy(); // killed without GOODBYE, memory still allocated
    // Every session's worker has ended, and with it all it held; only the spare remains.
    await waitFor(() => workers(outer!.child.pid!).length === 1, 10000, 'session workers ended');
  });
});
