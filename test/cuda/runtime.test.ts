// nvcc-built CUDA programs, unmodified, on the emulated GPU through the intercept library and the real
// server. Every program checks its own results and exits non-zero on a mismatch.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startServer, type RunningServer } from '../../gpu-runtime/server/src/main';
import { getProfile } from '../../gpu-runtime/emulator/src/profiles';
import { expectOk, interceptEnv, REPO, run, serverWithPrograms } from './programs';

describe('cuda programs on the emulated T4 through the intercept', function () {
  let server: RunningServer;
  let url: string;
  let bins: Record<string, string> = {};

  before(async function () {
    this.timeout(300000);
    ({ server, url, bins } = await serverWithPrograms('emulated:T4x2', [
      ['vadd', 'vector_add.cu'],
      ['vadd_shared', 'vector_add.cu', ['-cudart', 'shared']],
      ['vadd_ptds', 'vector_add.cu', ['--default-stream', 'per-thread']],
      ['query', 'device_query.cu'],
      ['kernels', 'kernels.cu'],
      ['streams', 'streams.cu'],
      ['errors', 'errors.cu'],
      ['cooperative', 'cooperative.cu'],
      ['nvsmi', 'nvsmi.cu'],
      ['intrinsics', 'intrinsics.cu'],
      ['intrinsics80', 'intrinsics.cu', ['-arch=sm_80']],
      ['libs', 'libs.cu'],
      ['devmalloc', 'devmalloc.cu'],
    ]));
  });

  after(async () => {
    await server?.close();
  });

  const exec = (name: string, args: string[] = [], timeoutMs = 60000) => run(bins[name], args, { env: interceptEnv(url), timeoutMs });

  it('vector add, static cudart (the default build)', async () => {
    const r = await exec('vadd', ['5000']);
    expectOk(r, 'vadd');
    assert.equal(r.stdout, 'vadd ok n=5000 c[10]=30 c[4999]=14997\n');
    assert.equal(r.stderr, '');
  });

  it('cooperative launch: grid-wide sync across resident blocks; an oversized grid is refused', async () => {
    const r = await exec('cooperative');
    expectOk(r, 'cooperative');
    assert.equal(r.stdout, 'cooperative ok sum=-10\n');
  });

  it('vector add, -cudart shared', async () => {
    const r = await exec('vadd_shared');
    expectOk(r, 'vadd_shared');
    assert.match(r.stdout, /vadd ok n=1000 c\[10\]=30 c\[999\]=2997/);
  });

  it('vector add, --default-stream per-thread (the _ptsz/_ptds entry points)', async () => {
    const r = await exec('vadd_ptds', ['2345']);
    expectOk(r, 'vadd_ptds');
    assert.equal(r.stdout, 'vadd ok n=2345 c[10]=30 c[2344]=7032\n');
  });

  it('device query: cudaGetDeviceProperties matches the T4 profile', async () => {
    const r = await exec('query');
    expectOk(r, 'device_query');
    const kv = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split('=') as [string, string]));
    const p = getProfile('T4');
    assert.equal(kv.count, '1');
    assert.ok(Number(kv.driver) >= 13000);
    assert.equal(kv.name, p.name);
    assert.equal(Number(kv.totalGlobalMem), p.totalMem);
    assert.equal(Number(kv.major), p.ccMajor);
    assert.equal(Number(kv.minor), p.ccMinor);
    assert.equal(Number(kv.multiProcessorCount), p.attributes[16]);
    assert.equal(Number(kv.warpSize), p.attributes[10]);
    assert.equal(Number(kv.maxThreadsPerBlock), p.attributes[1]);
    assert.equal(Number(kv.sharedMemPerBlock), p.attributes[8]);
  });

  for (const s of ['matmul', 'atomics', 'warp', 'params', 'symbols', 'misc']) {
    it(`kernels: ${s}`, async () => {
      const r = await exec('kernels', [s]);
      expectOk(r, s);
      assert.equal(r.stdout, `${s} ok\n`);
    });
  }

  it('device printf appears on the program stdout, in order with host output', async () => {
    const r = await exec('kernels', ['printf']);
    expectOk(r, 'printf');
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], 'host before');
    assert.equal(lines[lines.length - 1], 'host after');
    assert.deepEqual(lines.slice(1, -1).sort(), [0, 1].flatMap((b) => [0, 1].map((t) => `device says 7 from block ${b} thread ${t}`)));
  });

  it('streams with pinned memory and events (elapsed > 0)', async () => {
    const r = await exec('streams', ['streams']);
    expectOk(r, 'streams');
    assert.match(r.stdout, /streams ok elapsed=\d+\.\d+ms/);
  });

  it('several host threads, each with its own stream', async () => {
    expectOk(await exec('streams', ['threads']), 'threads');
  });

  it('a 256 MiB copy each way, checksummed', async function () {
    this.timeout(240000);
    const r = await exec('streams', ['large', '256'], 230000);
    expectOk(r, 'large');
    assert.match(r.stdout, /large ok 256 MiB checksum=[0-9a-f]{16}/);
  });

  for (const s of ['config', 'oom', 'badfree', 'illegal', 'reset']) {
    it(`error path: ${s}`, async () => {
      const r = await exec('errors', [s]);
      expectOk(r, s);
      assert.match(r.stdout, new RegExp(`^${s} ok`));
    });
  }

  /** `rgpu run RUNARGS` (its options, `--`, the command); no --pool means the embedded server. */
  const rgpuRun = (runArgs: string[], extraEnv: Record<string, string> = {}, timeoutMs = 60000) => {
    const cli = path.join(REPO, 'out/gpu-runtime/cli/src/main.js');
    const env = { ...interceptEnv(url), ...extraEnv };
    delete env.REMOTE_GPU_SERVER;
    return run(process.execPath, [cli, 'run', ...runArgs], { env, timeoutMs });
  };
  const viaRgpuRun = (args: string[], extraEnv: Record<string, string> = {}, timeoutMs = 60000) => rgpuRun(['--pool', url, '--', ...args], extraEnv, timeoutMs);

  it('runs through `rgpu run` (private proxy, Unix socket)', async () => {
    const r = await viaRgpuRun([bins.vadd, '777']);
    expectOk(r, 'rgpu run vadd');
    assert.equal(r.stdout, 'vadd ok n=777 c[10]=30 c[776]=2328\n');
  });

  it('through `rgpu run`, large copies take the data lane straight to the server, in order with the stream', async function () {
    this.timeout(180000);
    const r = await viaRgpuRun([bins.streams, 'pipeline', '48'], { REMOTE_GPU_TRACE: '1' }, 170000);
    expectOk(r, 'pipeline');
    assert.equal(r.stdout, 'pipeline ok 48 MiB\n');
    assert.match(r.stderr, /data lane attached to 127\.0\.0\.1:\d+/);
    const big = await viaRgpuRun([bins.streams, 'large', '80'], { REMOTE_GPU_TRACE: '1' }, 170000);
    expectOk(big, 'large via the lane');
    assert.match(big.stdout, /large ok 80 MiB/);
    assert.match(big.stderr, /data lane attached/);
    // Four host threads, each with its own stream and 1 MiB copies both ways, share the one lane.
    const threads = await viaRgpuRun([bins.streams, 'threads', String(256 * 1024)], { REMOTE_GPU_TRACE: '1' }, 170000);
    expectOk(threads, 'threads via the lane');
    assert.equal(threads.stdout, 'threads ok\n');
    assert.match(threads.stderr, /data lane attached/);
  });

  it('through `rgpu run` with no pool: the embedded server on a Unix socket, its lane on that socket too', async function () {
    this.timeout(180000);
    const r = await rgpuRun(['--', bins.streams, 'pipeline', '16'], { REMOTE_GPU_TRACE: '1' }, 170000);
    expectOk(r, 'pipeline on the embedded server');
    assert.equal(r.stdout, 'pipeline ok 16 MiB\n');
    assert.match(r.stderr, /data lane attached to unix:\/\S+\.pool-\d+-\d+/);
  });

  it('connects straight to a server on a Unix socket (REMOTE_GPU_SERVER=unix:PATH)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-unix-'));
    const local = await startServer({ socketPath: path.join(dir, 'pool.sock'), devices: 'emulated:T4' });
    try {
      const r = await run(bins.vadd, ['777'], { env: interceptEnv(`unix:${local.socketPath}`) });
      expectOk(r, 'vadd over a Unix socket');
      assert.equal(r.stdout, 'vadd ok n=777 c[10]=30 c[776]=2328\n');
      const refused = await run(bins.vadd, ['777'], { env: interceptEnv(`unix:${dir}/nobody.sock`, { REMOTE_GPU_TRACE: '1' }) });
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /cannot connect to \/\S+\/nobody\.sock/);
    } finally {
      await local.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('dp4a, dp2a, sad, fns, half-precision atomics, h2exp and half shuffles agree with host references (sm_75 and sm_80 code)', async function () {
    this.timeout(120000);
    const r = await exec('intrinsics');
    expectOk(r, 'intrinsics on T4');
    assert.equal(r.stdout, 'intrinsics ok\n');
    // sm_80 code (native bf16x2 atomics) on the embedded pool's A100.
    const a100 = await rgpuRun(['--gpu', 'A100-40GB', '--', bins.intrinsics80], {}, 110000);
    expectOk(a100, 'intrinsics on A100');
    assert.equal(a100.stdout, 'intrinsics ok\n');
  });

  it('device-side malloc/free and new/delete: allocations outlive their launch, NULL when the heap is full', async () => {
    const r = await exec('devmalloc');
    expectOk(r, 'devmalloc');
    assert.equal(r.stdout, 'devmalloc ok\n');
  });

  it('CUB block and warp primitives, cooperative_groups scans and memcpy_async, libcu++ atomic_ref', async () => {
    const r = await exec('libs');
    expectOk(r, 'libs');
    assert.equal(r.stdout, 'libs ok\n');
  });

  it('through `rgpu run`, nvidia-smi on PATH shows the remote GPU with the program\'s memory and pid', async () => {
    const r = await viaRgpuRun([bins.nvsmi]);
    expectOk(r, 'nvsmi');
    const [self, gpu, ...apps] = r.stdout.trim().split('\n');
    const pid = Number(/^self (\d+)$/.exec(self)?.[1]);
    const [name, used] = gpu.split(', ');
    assert.equal(name, 'Tesla T4');
    assert.ok(Number(used) >= 64, `memory.used ${used} MiB with 64 MiB allocated`);
    const mine = apps.map((l) => l.split(', ').map(Number)).find(([p]) => p === pid);
    assert.ok(mine, `pid ${pid} among ${apps}`);
    assert.equal(mine[1], 64, 'its own 64 MiB in the process list');
  });

  it('through `rgpu run` with REMOTE_GPU_LANE=0, the same copies go through the proxy', async function () {
    this.timeout(120000);
    const r = await viaRgpuRun([bins.streams, 'pipeline', '16'], { REMOTE_GPU_TRACE: '1', REMOTE_GPU_LANE: '0' }, 110000);
    expectOk(r, 'pipeline without a lane');
    assert.equal(r.stdout, 'pipeline ok 16 MiB\n');
    assert.doesNotMatch(r.stderr, /data lane attached/);
  });
});
