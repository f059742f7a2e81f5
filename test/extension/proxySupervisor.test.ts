import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { ProxyUnavailableError } from '../../extension/src/common/errors';
import { Methods, type Stats } from '../../extension/src/proxy/protocol';
import { ProxyModel } from '../../extension/src/proxy/proxyModel';
import { ProxySupervisor, type ProxyState } from '../../extension/src/proxy/proxySupervisor';

const FAKE = path.join(__dirname, 'fakeProxy.js');

function until(cond: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const check = () => (cond() ? resolve() : Date.now() - t0 > ms ? reject(new Error('timed out')) : setTimeout(check, 20));
    check();
  });
}

describe('extension kernel-proxy supervisor', function () {
  this.timeout(20000);
  let sup: ProxySupervisor | undefined;
  afterEach(async () => { await sup?.dispose(); sup = undefined; });

  const make = (log: string[], onStarted?: (s: ProxySupervisor) => Promise<void>) => new ProxySupervisor({
    command: () => ({ command: process.execPath, args: [FAKE, '--stats-interval', '50'] }),
    log: (l) => log.push(l), onStarted, backoffBaseMs: 50, healthyMs: 60000,
  });

  it('starts, answers requests and forwards statsChanged', async () => {
    const log: string[] = [];
    sup = make(log);
    const states: ProxyState[] = [];
    sup.onState((s) => states.push(s));
    const stats: Stats[] = [];
    sup.onStats((s) => stats.push(s));
    sup.start();
    await until(() => sup!.state === 'running');
    assert.deepEqual(states, ['starting', 'running']);
    const st = await sup.request<{ gpuType: string }>(Methods.status);
    assert.equal(st.gpuType, 'T4');
    assert.deepEqual(await sup.request(Methods.setGpuType, { type: 'A100-40GB' }), { type: 'A100-40GB' });
    const seen = stats.length;
    await until(() => stats.length >= seen + 2);
    assert.equal(stats.at(-1)!.gpuType, 'A100-40GB');
    assert.ok(stats[1].t >= stats[0].t);
  });

  it('restarts a crashed proxy and re-applies settings', async () => {
    const log: string[] = [];
    let applied = 0;
    sup = make(log, async (s) => { applied++; await s.request(Methods.setPool, { url: 'tls://pool:1', token: 'good-token' }); });
    sup.start();
    await until(() => sup!.state === 'running' && applied === 1);
    const pid = sup.pid;
    await sup.request('test/crash').catch(() => undefined);
    await until(() => sup!.restarts === 1 && sup!.state === 'running' && applied === 2);
    assert.notEqual(sup.pid, pid);
    assert.match(log.join('\n'), /kernel-proxy exited \(code 3\)/);
    // The token went over JSON-RPC after the restart too.
    assert.deepEqual(await sup.request('test/lastPool'), { url: 'tls://pool:1', connected: true });
  });

  it('gives up after repeated crashes and reports it', async () => {
    const log: string[] = [];
    sup = new ProxySupervisor({ command: () => ({ command: process.execPath, args: ['-e', 'process.exit(5)'] }), log: (l) => log.push(l), backoffBaseMs: 10, maxCrashes: 2 });
    sup.start();
    await until(() => log.some((l) => /giving up/.test(l)));
    assert.equal(sup.state, 'stopped');
    await assert.rejects(sup.request(Methods.status), ProxyUnavailableError);
  });

  it('ProxyModel keeps status, stats and a bounded history', async () => {
    sup = make([]);
    const model = new ProxyModel(sup, () => {}, 4);
    sup.start();
    await until(() => model.status !== undefined && model.history.length === 4, 8000);
    assert.equal(model.currentGpuType(), 'T4');
    await until(() => (model.stats?.uptimeMs ?? 0) > 400);
    assert.equal(model.history.length, 4);
    const inv = await model.inventory();
    assert.deepEqual(inv.types.map((t) => t.type), ['T4', 'A100-40GB']);
    await model.setGpuType('A100-40GB');
    assert.equal(model.status?.gpuType, 'A100-40GB');
    model.dispose();
  });
});

describe('extension kernel-proxy supervisor without a runtime', () => {
  it('stops with the configuration error instead of retrying', async () => {
    const log: string[] = [];
    let calls = 0;
    const sup = new ProxySupervisor({ command: () => { calls++; throw new Error('Remote GPU runtime not found'); }, log: (l) => log.push(l), backoffBaseMs: 10 });
    sup.start();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(sup.state, 'stopped');
    assert.equal(calls, 1);
    assert.equal(sup.lastError, 'Remote GPU runtime not found');
    await assert.rejects(sup.request(Methods.status), /runtime not found/);
    await sup.dispose();
  });
});
