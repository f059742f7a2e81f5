// Remote GPU's nvidia-smi: which GPU a process sees, and the table and CSV that people and scripts read.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KernelProxy } from '../../kernel-proxy/src/proxy';
import { FakePool } from '../kernel-proxy/fakePool';
import { runCli } from './runCli';
import { ancestry, parseNvidiaSmiArgs, render, viewOf } from '../../gpu-runtime/cli/src/nvidiaSmi';
import { SmiUsageError } from '../../gpu-runtime/cli/src/nvidiaSmiFormat';

const GiB = 1024 ** 3;
const T4 = { type: 'T4', name: 'Tesla T4', memory: 15 * GiB, uuid: 'GPU-00000001-0002-0003-0004-000000000005', cc: '7.5', pciBusId: '00000000:17:00.0', cudaVersion: '13.0' };
const INV = {
  types: [{ type: 'T4', name: 'Tesla T4', memory: 15 * GiB }, { type: 'A100-40GB', name: 'NVIDIA A100-SXM4-40GB', memory: 40 * GiB }],
  devices: [
    { ...T4, index: 0, memUsed: 3 * GiB, sessions: ['s-1'] },
    { ...T4, index: 1, memUsed: 512 * 1024 * 1024, sessions: ['s-2', 's-3'], uuid: 'GPU-00000001-0002-0003-0004-000000000006', clients: [{ session: 's-2', memUsed: 300 * 1024 * 1024 }, { session: 's-3' }] },
    { index: 2, type: 'A100-40GB', name: 'NVIDIA A100-SXM4-40GB', memory: 40 * GiB, memUsed: 0, sessions: [], uuid: 'GPU-a', cc: '8.0', pciBusId: '00000000:18:00.0', cudaVersion: '13.0' },
  ],
};
const STATUS = {
  pool: { url: 'tcp://pool:7447' },
  gpuType: 'A100-40GB',
  sessions: [
    { id: 's-2', pid: 4242, argv0: '/usr/bin/python3', state: 'attached' },
    { id: 's-3', pid: 5151, argv0: './train', state: 'attached' },
    { id: 's-9', pid: 4242, state: 'queued' },
  ],
};
const NOW = new Date('2026-11-25T11:50:00Z');
const args = (...a: string[]) => parseNvidiaSmiArgs(a);

describe('rgpu nvidia-smi', () => {
  it('shows the GPU of this process\'s session (an ancestor\'s pid), and every session of the proxy on it', () => {
    const v = viewOf(STATUS, INV, new Set([999, 4242]), NOW);
    assert.deepEqual(v.gpus.map((g) => [g.index, g.uuid, g.leased, g.memUsed]), [[0, 'GPU-00000001-0002-0003-0004-000000000006', true, 512 * 1024 * 1024]]);
    assert.deepEqual(v.processes, [{ gpu: 0, pid: 4242, name: '/usr/bin/python3', memUsed: 300 * 1024 * 1024 }, { gpu: 0, pid: 5151, name: './train', memUsed: undefined }]);
    assert.equal(v.pool, 'tcp://pool:7447');
  });

  it('before the first CUDA call: the type the proxy will ask for, nothing in use, no processes', () => {
    const v = viewOf({ ...STATUS, pool: { url: 'unix:/run/x.pool-1-1', embedded: true } }, INV, new Set([1]), NOW);
    assert.deepEqual(v.gpus.map((g) => [g.index, g.name, g.leased, g.memUsed]), [[0, 'NVIDIA A100-SXM4-40GB', false, 0]]);
    assert.deepEqual(v.processes, []);
    const table = render(args(), v);
    assert.match(table, /no session yet: a A100-40GB is leased at the first CUDA call/);
    assert.match(table, /pool embedded \(emulated, on this machine\)/);
    assert.match(table, /No running processes found/);
  });

  it('prints nvidia-smi\'s table, every ruled line as wide as the others', () => {
    const table = render(args(), viewOf(STATUS, INV, new Set([4242]), NOW));
    const ruled = table.split('\n').filter((l) => /^[|+]/.test(l));
    assert.ok(ruled.length >= 15);
    for (const l of ruled) assert.equal(l.length, 91, l);
    assert.match(table, /^\| NVIDIA-SMI \(Remote GPU\)\s+Driver Version: N\/A\s+CUDA Version: 13\.0\s+\|$/m);
    assert.match(table, /^\|   0  Tesla T4\s+N\/A \| 00000000:17:00\.0   N\/A \|\s+N\/A \|$/m);
    assert.match(table, /\|\s+512MiB \/ 15360MiB \|/);
    assert.match(table, /^\|\s+0\s+N\/A\s+N\/A\s+4242\s+C\s+\/usr\/bin\/python3\s+300MiB\s+\|$/m);
    assert.match(table, /^\|\s+0\s+N\/A\s+N\/A\s+5151\s+C\s+\.\/train\s+N\/A\s+\|$/m);
  });

  it('answers --query-gpu and --query-compute-apps as CSV, with and without header and units', () => {
    const v = viewOf(STATUS, INV, new Set([4242]), NOW);
    assert.equal(render(args('--query-gpu=index,name,memory.used,memory.total,utilization.gpu,compute_cap', '--format=csv'), v),
      'index, name, memory.used [MiB], memory.total [MiB], utilization.gpu [%], compute_cap\n0, Tesla T4, 512 MiB, 15360 MiB, [N/A], 7.5\n');
    assert.equal(render(args('--query-gpu', 'memory.free,uuid', '--format', 'csv,noheader,nounits'), v), '14848, GPU-00000001-0002-0003-0004-000000000006\n');
    assert.equal(render(args('--query-compute-apps=pid,process_name,used_memory', '--format=csv,noheader'), v), '4242, /usr/bin/python3, 300 MiB\n5151, ./train, [N/A]\n');
    assert.equal(render(args('-L'), v), 'GPU 0: Tesla T4 (UUID: GPU-00000001-0002-0003-0004-000000000006)\n');
    assert.match(render(args('-q'), v), /Product Name\s+: Tesla T4\n.*GPU UUID\s+: GPU-0+1-/s);
  });

  it('refuses what it does not know, as nvidia-smi would, with a usage error', () => {
    const v = viewOf(STATUS, INV, new Set([4242]), NOW);
    assert.throws(() => render(args('--query-gpu=name,bogus.field', '--format=csv'), v), (e: unknown) => e instanceof SmiUsageError && /Field "bogus.field" is not a valid field to query/.test(e.message));
    assert.throws(() => render(args('--query-gpu=name', '--format=json'), v), SmiUsageError);
    assert.throws(() => render(args('-i', '3'), v), /No devices were found with index 3/);
    assert.throws(() => args('--query-gpu=name'), /need --format=csv/);
    assert.throws(() => args('-r'), /option -r is not supported/); // reset: not ours to do
    assert.equal(args('-l', '2').loopS, 2);
    assert.throws(() => args('-i'), /-i needs a value/);
  });

  it('asks the proxy named by REMOTE_GPU_PROXY; -l repeats (the CSV header once); no proxy exits 9', async function () {
    this.timeout(30000);
    const pool = await FakePool.start();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-nvsmi-'));
    const proxy = await KernelProxy.start({ socket: path.join(dir, 'proxy.sock'), pool: pool.url, pingIntervalMs: 0, log: () => {} });
    try {
      const env = { ...process.env, REMOTE_GPU_PROXY: proxy.socketPath };
      const r = await runCli(['nvidia-smi', '-l', '0.2', '--query-gpu=name,memory.total', '--format=csv'], {
        env, onSpawn: (c) => { setTimeout(() => c.kill('SIGINT'), 1500); },
      });
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines[0], 'name, memory.total [MiB]');
      assert.ok(lines.length >= 3, r.stdout);
      for (const l of lines.slice(1)) assert.equal(l, 'Tesla T4, 15360 MiB');
      const none = await runCli(['nvidia-smi'], { env: { ...process.env, REMOTE_GPU_PROXY: path.join(dir, 'nobody.sock'), XDG_RUNTIME_DIR: dir } });
      assert.equal(none.code, 9);
      assert.match(none.stderr, /couldn't communicate with the remote GPU/);
      assert.equal((await runCli(['nvidia-smi', '-l', '0'], { env })).code, 2);
    } finally {
      await proxy.stop();
      await pool.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finds this process\'s ancestors through /proc', () => {
    const mine = ancestry();
    assert.ok(mine.has(process.pid) && mine.has(process.ppid), [...mine].join(' '));
  });
});
