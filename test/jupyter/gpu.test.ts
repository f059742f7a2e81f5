// The whole notebook path on the GPU: jupyter-server → remote-gpu kernel → intercept libcuda.so.1 →
// `rgpu proxy` → embedded emulated GPU server. These fail (loudly) until every piece is built.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { installKernelSpec } from '../../kernel-proxy/src/kernelspec';
import { rgpuCommand, startOwnedProxy, type OwnedProxy } from '../../kernel-proxy/src/proxyEnsure';
import { startJupyterServer, type RunningJupyter } from '../../kernel-proxy/src/jupyterServer';
import { NotebookKernel, streamText, type CellOutput } from '../../kernel-proxy/src/notebookKernel';
import { findKernelPython } from '../../kernel-proxy/src/pythonLocator';
import { quietJupyterClientLogs } from '../../kernel-proxy/src/quietLogs';
import { interceptDir, repoRoot } from '../../kernel-proxy/src/repoPaths';
import { proxyRequest } from '../../gpu-runtime/cli/src/proxyRequest';
import { processAlive, tempDir, waitFor } from './helpers';

const NOTEBOOK = path.join(repoRoot(), 'examples', 'remote-gpu-demo.ipynb');

function demoCells(): string[] {
  const nb = JSON.parse(fs.readFileSync(NOTEBOOK, 'utf8')) as { cells: { cell_type: string; source: string | string[] }[] };
  return nb.cells.filter((c) => c.cell_type === 'code').map((c) => (Array.isArray(c.source) ? c.source.join('') : c.source));
}

interface StatusReply { sessions: { id: string; pid: number; state: string }[] }
interface StatsReply { bytesToDevice: number; bytesFromDevice: number; ops: Record<string, { count: number }> }

function requireBuilt(): void {
  const lib = path.join(interceptDir(), 'libcuda.so.1');
  assert.ok(fs.existsSync(lib), `intercept library not built: ${lib} (npm run build:c)`);
  assert.ok(fs.existsSync(rgpuCommand()[1]), `rgpu CLI not built: ${rgpuCommand()[1]}`);
}

const errorsOf = (outs: CellOutput[]) => outs.filter((o) => o.output_type === 'error' || (o.output_type === 'stream' && o.name === 'stderr'));

describe('jupyter: notebook on the remote GPU (end to end)', function () {
  this.timeout(180000);
  let dir: string;
  let proxy: OwnedProxy;
  let jupyter: RunningJupyter;
  let k: NotebookKernel;
  let restore: () => void;
  let savedCache: string | undefined;
  const cells = demoCells();
  const ctl = () => `${proxy.socket}.ctl`;
  const run = (code: string) => k.execute(code, { timeoutMs: 150000 });
  const kernelPid = async () => Number(streamText((await run('import os; print(os.getpid())')).outputs).trim());

  before(async () => {
    requireBuilt();
    restore = quietJupyterClientLogs();
    dir = tempDir('gpu');
    // %%cuda caches binaries under XDG_CACHE_HOME; a private one keeps the test hermetic (and is shared
    // by the kernels this file starts, as a user's cache would be).
    savedCache = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = path.join(dir, 'cache');
    proxy = await startOwnedProxy({ socket: path.join(dir, 'run', 'proxy.sock') });
    installKernelSpec({ prefix: path.join(dir, 'prefix'), socket: proxy.socket });
    jupyter = await startJupyterServer({ dataDir: path.join(dir, 'jupyter'), jupyterPath: [path.join(dir, 'prefix', 'share', 'jupyter')], kernelName: 'remote-gpu' });
    const t0 = performance.now();
    k = await NotebookKernel.start(jupyter.baseUrl, jupyter.token, 'remote-gpu', 'gpu-test.ipynb');
    process.stderr.write(`      (kernel start: ${(performance.now() - t0).toFixed(0)} ms)\n`);
  });

  after(async () => {
    await k?.shutdown().catch(() => {});
    await jupyter?.stop();
    await proxy?.stop();
    restore?.();
    if (savedCache === undefined) delete process.env.XDG_CACHE_HOME; else process.env.XDG_CACHE_HOME = savedCache;
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('ctypes: the kernel loads the intercept libcuda and sees the pool\'s GPU', async () => {
    const t0 = performance.now();
    const first = await run('import remote_gpu, time\nt = time.perf_counter(); remote_gpu.check("cuInit", 0); print((time.perf_counter() - t) * 1000)');
    const wall = performance.now() - t0;
    assert.equal(first.status, 'ok', JSON.stringify(first.outputs));
    process.stderr.write(`      (first CUDA call cuInit: ${Number(streamText(first.outputs)).toFixed(1)} ms in the kernel, ${wall.toFixed(0)} ms cell wall)\n`);
    const r = await run(cells[0]);
    assert.equal(r.status, 'ok', JSON.stringify(r.outputs));
    const out = streamText(r.outputs);
    assert.match(out, new RegExp(`libcuda.so.1 loaded from ${interceptDir()}/libcuda`));
    assert.match(out, /^name\s+\S+/m);
    assert.match(out, /^totalMem\s+[1-9]\d*/m);
    const st = await proxyRequest(ctl(), 'rgpu/status') as StatusReply;
    const pid = await kernelPid();
    assert.ok(st.sessions.some((s) => s.pid === pid && s.state === 'attached'), `no attached session for kernel ${pid}: ${JSON.stringify(st.sessions)}`);
  });

  it('%%cuda: vector add compiled with nvcc runs on the remote GPU', async () => {
    const r = await run(cells[1]);
    assert.equal(r.status, 'ok', JSON.stringify(errorsOf(r.outputs)));
    assert.match(streamText(r.outputs), /vector add of 65536 floats on .+: max error 0\n/);
  });

  it('ctypes driver API: PTX module, copies and a launch; the proxy counted the bytes', async () => {
    const before = await proxyRequest(ctl(), 'rgpu/stats') as StatsReply;
    const r = await run(cells[2]);
    assert.equal(r.status, 'ok', JSON.stringify(errorsOf(r.outputs)));
    assert.match(streamText(r.outputs), /saxpy on 4096 floats: y\[1\]=4\.0, y\[4095\]=12286\.0, mismatches: 0/);
    const after = await proxyRequest(ctl(), 'rgpu/stats') as StatsReply;
    assert.ok(after.bytesToDevice - before.bytesToDevice >= 2 * 4 * 4096, `to device grew by ${after.bytesToDevice - before.bytesToDevice}`);
    assert.ok(after.bytesFromDevice - before.bytesFromDevice >= 4 * 4096, `from device grew by ${after.bytesFromDevice - before.bytesFromDevice}`);
    const g = await run(cells[cells.length - 1]);   // %gpu
    assert.equal(g.status, 'ok', JSON.stringify(g.outputs));
    assert.match(streamText(g.outputs), /session\s+\S+ \(attached/);
    assert.match(streamText(g.outputs), /GPU\s+.+ \(\S+\), [\d.]+ GiB/);
  });

  it('!nvidia-smi in the kernel shows its remote GPU, its memory in use and the kernel as the process', async () => {
    const pid = await kernelPid();
    const r = await run(`import subprocess
q = subprocess.run(["nvidia-smi", "--query-gpu=index,name,memory.used,memory.total", "--format=csv,noheader,nounits"], capture_output=True, text=True)
a = subprocess.run(["nvidia-smi", "--query-compute-apps=pid", "--format=csv,noheader"], capture_output=True, text=True)
t = subprocess.run(["nvidia-smi"], capture_output=True, text=True)
print(q.returncode, a.returncode, t.returncode)
print(q.stdout + "---\\n" + a.stdout + "---\\n" + t.stdout)`);
    assert.equal(r.status, 'ok', JSON.stringify(r.outputs));
    const [head, apps, table] = streamText(r.outputs).split(/^---$/m);
    const [codes, gpus] = head.trim().split('\n');
    assert.equal(codes, '0 0 0');
    const [index, name, used, total] = gpus.trim().split(', ');
    assert.deepEqual([index, name], ['0', 'Tesla T4']);
    assert.ok(Number(total) > 14000 && Number(used) >= 0 && Number(used) <= Number(total), gpus);
    assert.ok(apps.trim().split('\n').map(Number).includes(pid), `kernel pid ${pid} in ${apps}`);
    assert.match(table, /\|\s+0\s+Tesla T4\s+N\/A \|/);
    assert.match(table, new RegExp(`\\|\\s+0\\s+N/A\\s+N/A\\s+${pid}\\s+C\\s+`));
    assert.doesNotMatch(table, /no session yet/, 'the kernel has its session by now');
  });

  it('numba (Debian python3-numba 0.56): @cuda.jit kernel through remote_gpu.enable_numba()', async function () {
    if (spawnSync(findKernelPython(), ['-c', 'import numba, numpy']).status !== 0) {
      this.skip();   // python3-numba is optional (docs/jupyter.md); everything else here runs without it
    }
    const r = await run(`import remote_gpu
remote_gpu.enable_numba()
import numpy as np, warnings
from numba import cuda
warnings.simplefilter("ignore")
@cuda.jit
def axpb(x, out, a, b):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = a * x[i] + b
x = np.arange(2048, dtype=np.float32)
out = cuda.device_array_like(x)
axpb[16, 128](cuda.to_device(x), out, np.float32(2), np.float32(1))
print("numba ok", np.array_equal(out.copy_to_host(), 2 * x + 1), cuda.get_current_device().name.decode())`);
    assert.equal(r.status, 'ok', JSON.stringify(errorsOf(r.outputs)));
    assert.match(streamText(r.outputs), /^numba ok True \S/);
  });

  it('interrupt stops a %%cuda program that keeps the GPU busy, and its session is freed', async () => {
    const t0 = performance.now();
    let pid = 0;
    const long = k.execute(`%%cuda
#include <cstdio>
#include <unistd.h>
__global__ void spin(int* x) { x[threadIdx.x] += 1; }
int main() {
  int* d; cudaMalloc(&d, 256 * sizeof(int));
  printf("pid %d\\n", (int)getpid()); fflush(stdout);
  for (long i = 0;; i++) { spin<<<1, 256>>>(d); cudaDeviceSynchronize(); }
}`, { timeoutMs: 150000, onOutput: (o) => { const m = o.output_type === 'stream' ? /pid (\d+)/.exec(o.text) : null; if (m) pid = Number(m[1]); } });
    await waitFor('the CUDA program to start', () => pid > 0, 120000);
    const has = async (p: number) => ((await proxyRequest(ctl(), 'rgpu/status')) as StatusReply).sessions.some((s) => s.pid === p);
    await waitFor(`a session for program ${pid}`, () => has(pid), 10000);
    await k.interrupt();
    const r = await long;
    assert.equal(r.status, 'error');
    assert.ok(r.outputs.some((o) => o.output_type === 'error' && o.ename === 'KeyboardInterrupt'), JSON.stringify(r.outputs));
    await waitFor(`program ${pid} and its session to go`, async () => !processAlive(pid) && !(await has(pid)), 10000);
    process.stderr.write(`      (%%cuda interrupt round: ${(performance.now() - t0).toFixed(0)} ms including nvcc)\n`);
  });

  it('restart frees the old kernel\'s GPU session on the server', async () => {
    const pid = await kernelPid();
    await run('import remote_gpu; remote_gpu.device_info()');
    const has = async (p: number) => ((await proxyRequest(ctl(), 'rgpu/status')) as StatusReply).sessions.some((s) => s.pid === p);
    assert.ok(await has(pid), 'kernel has no session before restart');
    await k.restart();
    await waitFor(`session of kernel ${pid} to be freed`, async () => !processAlive(pid) && !(await has(pid)), 15000);
    const inv = await proxyRequest(ctl(), 'rgpu/inventory') as { sessions?: number };
    assert.ok(inv.sessions === undefined || inv.sessions <= 1, JSON.stringify(inv));
  });

  it('jupyter nbconvert --execute with `rgpu kernel install --prefix` (the launcher starts the proxy itself)', async () => {
    const prefix = path.join(dir, 'nbc');
    const socket = path.join(dir, 'auto', 'proxy.sock');   // nothing listens there yet
    const [node, cli] = rgpuCommand();
    const inst = spawnSync(node, [cli, 'kernel', 'install', '--prefix', prefix, '--socket', socket], { encoding: 'utf8' });
    assert.equal(inst.status, 0, inst.stderr);
    const out = path.join(dir, 'nbc-out.ipynb');
    const r = spawnSync(findKernelPython(), ['-m', 'nbconvert', '--to', 'notebook', '--execute', '--ExecutePreprocessor.kernel_name=remote-gpu',
      '--ExecutePreprocessor.timeout=300', NOTEBOOK, '--output', out],
    { encoding: 'utf8', env: { ...process.env, JUPYTER_PATH: path.join(prefix, 'share', 'jupyter'), JUPYTER_DATA_DIR: path.join(dir, 'nbc-data') }, timeout: 170000 });
    try {
      assert.equal(r.status, 0, r.stderr.slice(-4000));
      const nb = JSON.parse(fs.readFileSync(out, 'utf8')) as { cells: { cell_type: string; outputs?: CellOutput[] }[] };
      const text = nb.cells.flatMap((c) => c.outputs ?? []).map((o) => (o.output_type === 'stream' ? [o.text].flat().join('') : '')).join('');
      assert.match(text, /max error 0/);
      assert.match(text, /mismatches: 0/);
      assert.match(text, /numba on .+: max error|numba is not installed/);
      assert.match(text, /pool\s+embedded \(emulated, on this machine\) connected/, '%gpu names the launcher\'s embedded server');
      assert.match(text, /name, memory\.used \[MiB\], memory\.total \[MiB\]\r?\nTesla T4, \d+ MiB, \d+ MiB/, '!nvidia-smi in the demo notebook (a pty: CRLF)');
    } finally {
      await proxyRequest(`${socket}.ctl`, 'rgpu/shutdown').catch(() => {});
    }
  });
});
