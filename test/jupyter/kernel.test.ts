// The remote-gpu kernel under a real jupyter-server, driven with @jupyterlab/services, in front of a
// stand-in proxy control socket: what the launcher and the IPython extension do without the GPU path.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { installKernelSpec } from '../../kernel-proxy/src/kernelspec';
import { startJupyterServer, type RunningJupyter } from '../../kernel-proxy/src/jupyterServer';
import { NotebookKernel, streamText } from '../../kernel-proxy/src/notebookKernel';
import { quietJupyterClientLogs } from '../../kernel-proxy/src/quietLogs';
import { interceptDir } from '../../kernel-proxy/src/repoPaths';
import { FakeProxyControl, processAlive, tempDir, waitFor } from './helpers';

const STATUS = { pool: { url: 'tcp://pool.test:7447', connected: true }, gpuType: 'T4', sessions: [], rttMs: 0.25 };
const STATS = { bytesToDevice: 1024, bytesFromDevice: 3 << 20, ops: { LAUNCH: { count: 7, bytes: 0, timeMs: 1 } }, rtt: { lastMs: 0.2, p50Ms: 0.2, p99Ms: 0.9, samples: 12 } };

describe('jupyter: remote-gpu kernel (launcher + extension, stand-in proxy)', function () {
  this.timeout(120000);
  let dir: string;
  let fake: FakeProxyControl;
  let jupyter: RunningJupyter;
  let k: NotebookKernel;
  let restore: () => void;
  let savedCache: string | undefined;
  const run = async (code: string, timeoutMs = 60000) => k.execute(code, { timeoutMs });
  const kernelPid = async () => Number(streamText((await run('import os; print(os.getpid())')).outputs).trim());

  before(async () => {
    restore = quietJupyterClientLogs();
    dir = tempDir('kernel');
    // %%cuda caches binaries under XDG_CACHE_HOME; a private one keeps the test hermetic (and is shared
    // by the kernels this file starts, as a user's cache would be).
    savedCache = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = path.join(dir, 'cache');
    const socket = path.join(dir, 'run', 'proxy.sock');
    fake = await FakeProxyControl.start(socket, { 'rgpu/status': STATUS, 'rgpu/stats': STATS });
    installKernelSpec({ prefix: path.join(dir, 'prefix'), socket });
    jupyter = await startJupyterServer({ dataDir: path.join(dir, 'jupyter'), jupyterPath: [path.join(dir, 'prefix', 'share', 'jupyter')], kernelName: 'remote-gpu' });
    const t0 = performance.now();
    k = await NotebookKernel.start(jupyter.baseUrl, jupyter.token, 'remote-gpu', 'kernel-test.ipynb');
    process.stderr.write(`      (kernel start through the launcher: ${(performance.now() - t0).toFixed(0)} ms)\n`);
  });

  after(async () => {
    await k?.shutdown().catch(() => {});
    await jupyter?.stop();
    await fake?.close();
    restore?.();
    if (savedCache === undefined) delete process.env.XDG_CACHE_HOME; else process.env.XDG_CACHE_HOME = savedCache;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('starts ipykernel with the intercept first on the library path, the proxy socket and no credentials', async () => {
    const r = await run(`import os, json
print(json.dumps({k: os.environ.get(k) for k in ["LD_LIBRARY_PATH", "REMOTE_GPU_PROXY", "RGPU_TOKEN_FILE", "REMOTE_GPU_SERVER"]}))`);
    assert.equal(r.status, 'ok', JSON.stringify(r.outputs));
    const env = JSON.parse(streamText(r.outputs));
    assert.equal(env.LD_LIBRARY_PATH.split(':')[0], interceptDir());
    assert.equal(env.REMOTE_GPU_PROXY, fake.socket);
    assert.equal(env.RGPU_TOKEN_FILE, null);
    assert.equal(env.REMOTE_GPU_SERVER, null);
  });

  it('%gpu asks the proxy over JSON-RPC and shows type, pool, transfers and latency', async () => {
    const r = await run('%gpu');
    assert.equal(r.status, 'ok', JSON.stringify(r.outputs));
    const out = streamText(r.outputs);
    assert.match(out, /GPU type\s+T4/);
    assert.match(out, /tcp:\/\/pool\.test:7447 connected/);
    assert.match(out, /to device\s+1\.0 KiB\s+from device 3\.0 MiB/);
    assert.match(out, /ops\s+7 total\s+\(LAUNCH 7\)/);
    assert.match(out, /p50 0\.200 ms, p99 0\.900 ms/);
    assert.match(out, /no CUDA call so far/);
    assert.ok(fake.calls.includes('rgpu/status') && fake.calls.includes('rgpu/stats'));
    const j = await run('r = %gpu --json\nprint(r["stats"]["bytesFromDevice"])');
    assert.equal(streamText(j.outputs).trim(), String(3 << 20));
  });

  it('%%cuda shows nvcc errors and the program output and exit status', async () => {
    const bad = await run('%%cuda\nint main() { return undeclared_thing; }');
    assert.equal(bad.status, 'error');
    const e = bad.outputs.find((o) => o.output_type === 'error');
    assert.ok(e && e.output_type === 'error' && e.ename === 'CudaCellError' && /nvcc failed/.test(e.evalue) && /undeclared_thing/.test(e.evalue), JSON.stringify(bad.outputs));
    const prog = await run('%%cuda -O1 -- alpha beta\n#include <cstdio>\nint main(int argc, char** argv) { printf("args %s %s\\n", argv[1], argv[2]); fprintf(stderr, "to stderr\\n"); return 3; }');
    assert.equal(prog.status, 'error');
    assert.equal(streamText(prog.outputs, 'stdout'), 'args alpha beta\n');
    assert.match(streamText(prog.outputs, 'stderr'), /to stderr/);
    const pe = prog.outputs.find((o) => o.output_type === 'error');
    assert.ok(pe && pe.output_type === 'error' && pe.evalue === 'CUDA program exited with status 3', JSON.stringify(pe));
    const meta = await run('import remote_gpu; print(remote_gpu.last_run["returncode"])');
    assert.equal(streamText(meta.outputs).trim(), '3');
  });

  it('jupyter-server moves to a fresh port when its port is taken before it binds', async () => {
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', () => r()));
    const taken = (squatter.address() as net.AddressInfo).port;
    let output = '';
    const j = await startJupyterServer({ dataDir: path.join(dir, 'jupyter2'), jupyterPath: [path.join(dir, 'prefix', 'share', 'jupyter')], kernelName: 'remote-gpu', port: taken, onOutput: (t) => (output += t) });
    try {
      assert.notEqual(new URL(j.baseUrl).port, String(taken));
      assert.match(output, new RegExp(`port ${taken} was taken`));
      const r = await fetch(`${j.baseUrl}api/kernelspecs`, { headers: { Authorization: `token ${j.token}` } });
      assert.equal(r.status, 200);
    } finally {
      await j.stop();
      squatter.close();
    }
  });

  it('interrupt stops a long cell and the kernel lives on', async () => {
    const pid = await kernelPid();
    const t0 = performance.now();
    const long = run('import time\nfor i in range(600):\n    time.sleep(0.1)\nprint("not interrupted")');
    setTimeout(() => void k.interrupt(), 1500);
    const r = await long;
    assert.equal(r.status, 'error');
    const e = r.outputs.find((o) => o.output_type === 'error');
    assert.ok(e && e.output_type === 'error' && e.ename === 'KeyboardInterrupt', JSON.stringify(r.outputs));
    assert.ok(performance.now() - t0 < 20000);
    assert.equal(await kernelPid(), pid, 'the interrupt killed the kernel');
  });

  it('restart replaces the kernel process and the old one is gone', async () => {
    const pid = await kernelPid();
    await k.restart();
    const pid2 = await kernelPid();
    assert.notEqual(pid2, pid);
    await waitFor(`old kernel ${pid} to exit`, () => !processAlive(pid), 10000);
  });

  it('a SIGKILLed launcher takes its ipykernel with it', async () => {
    const pid = await kernelPid();
    const ppid = Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]);
    assert.match(fs.readFileSync(`/proc/${ppid}/cmdline`, 'utf8'), /kernelLauncher\.js/);
    process.kill(ppid, 'SIGKILL');
    await waitFor(`kernel ${pid} to exit after its launcher died`, () => !processAlive(pid), 5000);
  });
});
