import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { KernelProxy } from '../../kernel-proxy/src/proxy';
import { parsePoolUrl } from '../../kernel-proxy/src/poolUrl';
import { proxyRequest } from '../../gpu-runtime/cli/src/proxyRequest';
import { FakePool } from './fakePool';
import { listeningTcpPorts, processTree } from '../helpers/procNet';
import { TestClient, until } from './testClient';

const CLI = path.resolve(__dirname, '..', '..', 'gpu-runtime', 'cli', 'src', 'main.js');

function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => r(p));
    });
  });
}

/** true when the pool at `url` (tcp:// or unix:) accepts connections. */
function answers(url: string): Promise<boolean> {
  const u = parsePoolUrl(url);
  return new Promise((resolve) => {
    const c = u.path ? net.connect(u.path) : net.connect(u.port, u.host);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

describe('kernel-proxy pool lifecycle', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-life-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reconnects the control connection when the pool comes up, and again after it restarts', async () => {
    const port = await freePort();
    const proxy = await KernelProxy.start({ socket: path.join(dir, 'p.sock'), pool: `tcp://127.0.0.1:${port}`, pingIntervalMs: 0, log: () => {} });
    let pool: FakePool | null = null;
    try {
      await until(() => proxy.status().pool.error !== undefined, 3000, 'first failure recorded');
      assert.equal(proxy.status().pool.connected, false);
      pool = await FakePool.start(port);
      await until(() => proxy.status().pool.connected, 5000, 'connected after the pool came up');
      assert.equal(proxy.status().pool.error, undefined);
      await pool.close();
      await until(() => !proxy.status().pool.connected, 3000, 'loss noticed');
      pool = await FakePool.start(port);
      await until(() => proxy.status().pool.connected, 5000, 'reconnected after a restart');
      const c = await TestClient.connect(proxy.socketPath);
      assert.equal((await c.hello()).frame.result, 0, 'sessions work again');
      c.sock.destroy();
    } finally {
      await proxy.stop();
      await pool?.close();
    }
  });

  it('runs the embedded server without a pool, serves its inventory, and retires it when moved to a pool', async function () {
    this.timeout(60000);
    const proxy = await KernelProxy.start({ socket: path.join(dir, 'p.sock'), embeddedDevices: 'emulated:T4x1', pingIntervalMs: 0, log: () => {} });
    const pool = await FakePool.start();
    try {
      // The proxy listens before its embedded server is up: an early session waits for it.
      assert.equal(proxy.status().pool.connected, false);
      const c = await TestClient.connect(proxy.socketPath);
      const { frame, value } = await c.hello();
      assert.equal(frame.result, 0);
      assert.equal((value.device as { type: string }).type, 'T4');
      await until(() => proxy.status().pool.connected, 10000, 'control connection to the embedded server');
      const st = proxy.status();
      assert.equal(st.pool.embedded, true);
      // On a private Unix socket: no TCP port for other local users, none to take from a starting kernel.
      const embedded = st.pool.url;
      assert.match(embedded, /^unix:\//);
      assert.equal(fs.statSync(embedded.slice(5)).mode & 0o777, 0o600);
      const inv = (await proxy.inventory()) as { types: Array<{ type: string; total: number }> };
      assert.deepEqual(inv.types.map((t) => [t.type, t.total]), [['T4', 1]]);
      await proxy.setPool(pool.url);
      assert.ok(await answers(embedded), 'kept while a session uses it');
      c.sock.destroy();
      await until(() => proxy.status().sessions.length === 0, 3000, 'session gone');
      for (let i = 0; i < 100 && (await answers(embedded)); i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(await answers(embedded), false, 'embedded server stopped');
      assert.equal(proxy.status().pool.url, pool.url);
      await proxy.setPool('');
      const again = proxy.status().pool.url;
      assert.notEqual(again, embedded, 'a fresh socket, not the one of the server that stopped');
      assert.equal(proxy.status().pool.embedded, true);
      assert.ok(await answers(again), 'back on a fresh embedded server');
      await proxy.stop();
      assert.equal(await answers(again), false, 'stop() stops the embedded server');
    } finally {
      await proxy.stop();
      await pool.close();
    }
  });

  it('clears embedded-server sockets whose proxy died with its server, and no live one', async () => {
    const socket = path.join(dir, 'p.sock');
    const dead = `${socket}.pool-999999999-1`, live = `${socket}.pool-${process.ppid}-1`, other = path.join(dir, 'q.sock.pool-999999999-1');
    for (const f of [dead, live, other]) fs.writeFileSync(f, '');
    const proxy = await KernelProxy.start({ socket, pool: 'tcp://127.0.0.1:1', pingIntervalMs: 0, log: () => {} });
    try {
      assert.deepEqual([dead, live, other].map((f) => fs.existsSync(f)), [false, true, true]);
    } finally {
      await proxy.stop();
    }
  });

  it('does not leave the embedded server behind when the proxy is killed outright', async function () {
    this.timeout(60000);
    const socket = path.join(dir, 'p.sock');
    const child = spawn(process.execPath, [CLI, 'proxy', '--socket', socket, '--embedded-devices', 'emulated:T4x1'], { stdio: 'ignore' });
    try {
      await until(() => fs.existsSync(`${socket}.ctl`), 30000, 'proxy up');
      let st = { pool: { url: '', connected: false } };
      for (let i = 0; i < 300 && !st.pool.connected; i++) {
        st = (await proxyRequest(`${socket}.ctl`, 'rgpu/status')) as typeof st;
        await new Promise((r) => setTimeout(r, 100));
      }
      const port = st.pool.url;
      assert.ok(await answers(port));
      // Neither the proxy nor its embedded server opens a TCP port (a kernel being started may own any free one).
      const tree = processTree(child.pid!);
      assert.ok(tree.length >= 2, `the proxy and its server: ${tree}`);
      assert.deepEqual(listeningTcpPorts(tree), []);
      child.kill('SIGKILL');
      for (let i = 0; i < 200 && (await answers(port)); i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(await answers(port), false, 'server gone with its proxy');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
