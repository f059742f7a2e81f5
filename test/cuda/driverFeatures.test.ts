// Virtual memory management, graphs by stream capture, host functions and faults confined to their context:
// nvcc-built programs on the
// emulated T4 through the intercept. Each program checks its own results and exits non-zero on a mismatch.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import type { RunningServer } from '../../gpu-runtime/server/src/main';
import { expectOk, interceptEnv, REPO, run, serverWithPrograms } from './programs';

describe('VMM, graphs, host functions and per-context faults on the emulated T4 through the intercept', function () {
  let server: RunningServer;
  let url: string;
  let bins: Record<string, string> = {};

  before(async function () {
    this.timeout(300000);
    ({ server, url, bins } = await serverWithPrograms('emulated:T4', [['vmm', 'vmm.cu'], ['graphs', 'graphs.cu'], ['hostfn', 'hostfn.cu'], ['ctxfault', 'ctxfault.cu']]));
  });

  after(async () => {
    await server?.close();
  });

  const exec = (name: string, extra: Record<string, string> = {}) => run(bins[name], [], { env: interceptEnv(url, extra) });

  it('reserve, create, map side by side, kernel and copies across the seam, remap elsewhere, release', async () => {
    const r = await exec('vmm', { REMOTE_GPU_TRACE: '1' });
    expectOk(r, 'vmm');
    assert.equal(r.stdout, 'vmm ok granularity=2097152 pages=1536\n');
    // every refusal says why under REMOTE_GPU_TRACE
    assert.match(r.stderr, /second mapping would alias -> CUDA_ERROR_NOT_SUPPORTED/);
    assert.match(r.stderr, /mapping part of a handle .* -> CUDA_ERROR_NOT_SUPPORTED/);
    assert.match(r.stderr, /cuMemAddressFree\(0x[0-9a-f]+\): the range is still mapped/);
  });

  it('stream capture: 8 nodes on two streams, launched 100 times; nested capture; invalidated capture', async () => {
    const r = await exec('graphs', { REMOTE_GPU_TRACE: '1' });
    expectOk(r, 'graphs');
    assert.equal(r.stdout, 'graphs ok launches=100 nodes=8 acc[7]=11300\n');
    assert.match(r.stderr, /stream capture \d+ invalidated: cuMemAllocAsync \(memory nodes\) cannot be captured/);
  });

  it('host functions do not block the caller, keep stream order, start one thread only when used', async () => {
    const r = await exec('hostfn');
    expectOk(r, 'hostfn');
    assert.equal(r.stdout, 'hostfn ok call_ms<150 total_ms>=300 yes\n');
    assert.equal(r.stderr, '');
  });

  it('a fault ends its context only: a new context works, the faulted one keeps failing, a reset clears it', async () => {
    const r = await exec('ctxfault', { REMOTE_GPU_TRACE: '1' });
    expectOk(r, 'ctxfault');
    assert.equal(r.stdout, 'ctxfault ok\n');
    const sessions = [...r.stderr.matchAll(/session (s-\d+) on /g)].map((m) => m[1]);
    assert.equal(sessions.length, 2, `one session before the fault, one after:\n${r.stderr}`);
    assert.match(r.stderr, /faulted \(CUresult 700\): a new context gets a new session/);
  });

  it('through `rgpu run`, the session after a fault attaches a data lane of its own', async () => {
    const env = interceptEnv(url, { REMOTE_GPU_TRACE: '1' });
    delete env.REMOTE_GPU_SERVER;
    const r = await run(process.execPath, [path.join(REPO, 'out/gpu-runtime/cli/src/main.js'), 'run', '--pool', url, '--', bins.ctxfault], { env, timeoutMs: 60000 });
    expectOk(r, 'ctxfault via rgpu run');
    assert.equal(r.stdout, 'ctxfault ok\n');
    assert.equal([...r.stderr.matchAll(/data lane attached/g)].length, 2, `a lane per session:\n${r.stderr.split('\n').filter((l) => !/cuGetProcAddress/.test(l)).join('\n')}`);
  });
});
