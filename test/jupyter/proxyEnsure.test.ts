import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureProxy, proxyAnswers } from '../../kernel-proxy/src/proxyEnsure';
import { ProxyStartError } from '../../kernel-proxy/src/kernelErrors';
import { FakeProxyControl, processAlive, tempDir } from './helpers';

// A stand-in `rgpu` that records its argv and listens on <socket>.ctl like `rgpu proxy` would.
const FAKE_CLI = `
const net = require('net'), fs = require('fs');
const a = process.argv.slice(2); const sock = a[a.indexOf('--socket') + 1];
fs.writeFileSync(sock + '.argv', JSON.stringify(a));
fs.writeFileSync(sock + '.pid', String(process.pid));
if (process.env.FAKE_RGPU_FAIL) { console.error('cannot start'); process.exit(3); }
net.createServer(() => {}).listen(sock + '.ctl');
setTimeout(() => process.exit(0), 15000);
`;

describe('jupyter: the launcher makes sure a kernel-proxy runs', () => {
  let dir: string;
  const saved = { cli: process.env.RGPU_CLI, fail: process.env.FAKE_RGPU_FAIL };
  beforeEach(() => {
    dir = tempDir('ensure');
    fs.writeFileSync(path.join(dir, 'fake-rgpu.js'), FAKE_CLI);
    process.env.RGPU_CLI = path.join(dir, 'fake-rgpu.js');
  });
  afterEach(() => {
    // The fake proxies are detached on purpose (as the real one is); end the ones this test started.
    const pidFile = path.join(dir, 'run', 'proxy.sock.pid');
    if (fs.existsSync(pidFile)) { const pid = Number(fs.readFileSync(pidFile, 'utf8')); if (processAlive(pid)) process.kill(pid); }
    process.env.RGPU_CLI = saved.cli;
    if (saved.cli === undefined) delete process.env.RGPU_CLI;
    delete process.env.FAKE_RGPU_FAIL;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('uses a proxy that already answers', async () => {
    const socket = path.join(dir, 'run', 'proxy.sock');
    const fake = await FakeProxyControl.start(socket, {});
    try {
      assert.deepEqual(await ensureProxy({ socket }), { spawned: false });
      assert.ok(!fs.existsSync(`${socket}.argv`), 'spawned a second proxy');
    } finally {
      await fake.close();
    }
  });

  it('spawns `rgpu proxy` detached with the pool, GPU and token file, and waits for it', async () => {
    const socket = path.join(dir, 'run', 'proxy.sock');
    assert.equal(await proxyAnswers(socket), false);
    const r = await ensureProxy({ socket, pool: 'tcp://127.0.0.1:7447', gpu: 'T4', tokenFile: '/etc/tok' });
    assert.equal(r.spawned, true);
    assert.equal(await proxyAnswers(socket), true);
    assert.deepEqual(JSON.parse(fs.readFileSync(`${socket}.argv`, 'utf8')),
      ['proxy', '--socket', socket, '--pool', 'tcp://127.0.0.1:7447', '--gpu', 'T4', '--token-file', '/etc/tok']);
    assert.equal((fs.statSync(path.dirname(socket)).mode & 0o777), 0o700);
    assert.ok(!fs.existsSync(`${socket}.spawn.lock`), 'lock left behind');
  });

  it('two kernels starting together share one proxy', async () => {
    const socket = path.join(dir, 'run', 'proxy.sock');
    const rs = await Promise.all([ensureProxy({ socket }), ensureProxy({ socket }), ensureProxy({ socket })]);
    assert.equal(rs.filter((r) => r.spawned).length, 1);
  });

  it('reports a proxy that dies at start, with where its log is', async () => {
    process.env.FAKE_RGPU_FAIL = '1';
    const socket = path.join(dir, 'run', 'proxy.sock');
    const t0 = Date.now();
    await assert.rejects(ensureProxy({ socket, timeoutMs: 10000 }), (e: unknown) =>
      e instanceof ProxyStartError && e.code === 'RGPU_ERR_PROXY_START' && /exited with 3/.test(e.message) && e.message.includes(`${socket}.log`));
    assert.ok(Date.now() - t0 < 5000, 'waited for the timeout instead of noticing the exit');
    assert.match(fs.readFileSync(`${socket}.log`, 'utf8'), /cannot start/);
  });

  it('fails clearly when the rgpu CLI is not built', async () => {
    process.env.RGPU_CLI = path.join(dir, 'nope.js');
    await assert.rejects(ensureProxy({ socket: path.join(dir, 'r', 'p.sock') }), /rgpu CLI not built/);
  });
});
