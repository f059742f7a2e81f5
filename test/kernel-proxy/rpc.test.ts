import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KernelProxy } from '../../kernel-proxy/src/proxy';
import type { Stats } from '../../kernel-proxy/src/stats';
import { FakePool, INVENTORY } from './fakePool';
import { TestClient, until } from './testClient';
import { connectCtl, nextNotification, rpc } from './rpcClient';

const CLI = path.resolve(__dirname, '..', '..', 'gpu-runtime', 'cli', 'src', 'main.js');

describe('kernel-proxy JSON-RPC on the .ctl socket', () => {
  let dir: string;
  let pool: FakePool;
  let proxy: KernelProxy;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-rpc-'));
    pool = await FakePool.start();
    proxy = await KernelProxy.start({ socket: path.join(dir, 'proxy.sock'), pool: pool.url, statsIntervalMs: 50, pingIntervalMs: 0, log: () => {} });
  });

  afterEach(async () => {
    await proxy.stop();
    await pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves status, inventory, ping, stats and setGpuType (applied to new sessions)', async () => {
    const { conn, sock } = await connectCtl(proxy.ctlPath);
    try {
      await until(() => proxy.status().pool.connected, 3000, 'control connection');
      const st = (await conn.sendRequest('rgpu/status')) as { pool: { url: string; connected: boolean }; gpuType: string; sessions: unknown[]; rttMs: number };
      assert.deepEqual(st.pool, { url: pool.url, connected: true });
      assert.equal(st.gpuType, '');
      assert.deepEqual(st.sessions, []);
      assert.deepEqual(await conn.sendRequest('rgpu/inventory'), INVENTORY);
      const ping = (await conn.sendRequest('rgpu/ping')) as { rttMs: number };
      assert.ok(ping.rttMs > 0 && ping.rttMs < 1000);
      assert.deepEqual(await conn.sendRequest('rgpu/setGpuType', { type: 'A100-40GB' }), { type: 'A100-40GB' });
      const c = await TestClient.connect(proxy.socketPath);
      await c.hello('T4');
      assert.equal(pool.sessionConns()[0].hello!.gpuType, 'A100-40GB');
      const stats = (await conn.sendRequest('rgpu/stats')) as Stats;
      assert.equal(stats.gpuType, 'A100-40GB');
      assert.equal(stats.sessions, 1);
      assert.equal(stats.ops.HELLO.count, 1);
      assert.equal(stats.rtt.samples, 1, 'the ping');
      const st2 = (await conn.sendRequest('rgpu/status')) as { sessions: Array<{ id: string; state: string }> };
      assert.deepEqual(st2.sessions.map((s) => [s.id, s.state]), [['s-1', 'attached']]);
      c.sock.destroy();
    } finally {
      conn.dispose();
      sock.destroy();
    }
  });

  it('notifies rgpu/statsChanged every interval with fresh figures', async () => {
    const { conn, sock } = await connectCtl(proxy.ctlPath);
    try {
      const first = await nextNotification<Stats>(conn, 'rgpu/statsChanged');
      const c = await TestClient.connect(proxy.socketPath);
      await c.hello();
      const later = await nextNotification<Stats>(conn, 'rgpu/statsChanged');
      assert.ok(later.t >= first.t);
      assert.ok(later.bytesToDevice > first.bytesToDevice);
      assert.equal(later.sessions, 1);
      for (const k of ['uptimeMs', 'h2dBps', 'd2hBps', 'opsPerSec', 'queueDepth', 'errors']) assert.equal(typeof (later as unknown as Record<string, unknown>)[k], 'number', k);
      c.sock.destroy();
    } finally {
      conn.dispose();
      sock.destroy();
    }
  });

  it('rejects bad params with a coded error, switches pools with setPool, and stops on shutdown', async () => {
    const { conn, sock } = await connectCtl(proxy.ctlPath);
    const other = await FakePool.start();
    let stopped = false;
    try {
      await assert.rejects(conn.sendRequest('rgpu/setGpuType', {}), (e: unknown) => e instanceof rpc.ResponseError && (e.data as { code: string }).code === 'RGPU_ERR_BAD_ARGS');
      await assert.rejects(conn.sendRequest('rgpu/setPool', { url: 'http://x' }), (e: unknown) => e instanceof rpc.ResponseError && (e.data as { code: string }).code === 'RGPU_ERR_BAD_POOL_URL');
      assert.deepEqual(await conn.sendRequest('rgpu/setPool', { url: other.url, token: 't0k' }), { ok: true });
      await until(() => proxy.status().pool.connected && proxy.status().pool.url === other.url, 3000, 'new pool');
      const c = await TestClient.connect(proxy.socketPath);
      await c.hello();
      assert.equal(other.sessionConns()[0].hello!.token, 't0k');
      assert.equal(pool.sessionConns().length, 0);
      c.sock.destroy();
      void proxy.stop().then(() => (stopped = true));
      await until(() => stopped, 3000, 'stopped');
    } finally {
      conn.dispose();
      sock.destroy();
      await other.close();
    }
  });
});

describe('kernel-proxy process (rgpu proxy --stdio)', () => {
  let dir: string;
  let pool: FakePool;
  let child: ChildProcess | null = null;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-stdio-'));
    pool = await FakePool.start();
  });

  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves JSON-RPC on stdio, notifies stats, and answers rgpu/shutdown by exiting', async () => {
    const socket = path.join(dir, 'proxy.sock');
    child = spawn(process.execPath, [CLI, 'proxy', '--stdio', '--pool', pool.url, '--socket', socket, '--stats-interval', '50', '--gpu', 'T4'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    const conn = rpc.createMessageConnection(new rpc.StreamMessageReader(child.stdout!), new rpc.StreamMessageWriter(child.stdin!));
    conn.listen();
    const stats = await nextNotification<Stats>(conn, 'rgpu/statsChanged', 10000);
    assert.equal(stats.gpuType, 'T4');
    const st = (await conn.sendRequest('rgpu/status')) as { pool: { url: string }; gpuType: string };
    assert.equal(st.pool.url, pool.url);
    assert.equal(st.gpuType, 'T4');
    const c = await TestClient.connect(socket);
    await c.hello();
    assert.equal(pool.sessionConns()[0].hello!.gpuType, 'T4');
    c.sock.destroy();
    assert.deepEqual(await conn.sendRequest('rgpu/shutdown'), {});
    assert.equal(await exited, 0);
    assert.equal(fs.existsSync(socket), false);
    assert.equal(fs.existsSync(`${socket}.ctl`), false);
    conn.dispose();
  });

  it('stops in order on SIGTERM: socket unlinked, exit 0', async () => {
    const socket = path.join(dir, 'proxy.sock');
    child = spawn(process.execPath, [CLI, 'proxy', '--pool', pool.url, '--socket', socket], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    await until(() => fs.existsSync(`${socket}.ctl`), 10000, 'proxy socket');
    const { conn, sock } = await connectCtl(`${socket}.ctl`);
    assert.equal(((await conn.sendRequest('rgpu/status')) as { pool: { url: string } }).pool.url, pool.url);
    conn.dispose();
    sock.destroy();
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(fs.existsSync(socket), false);
  });

  it('refuses to start on a socket another proxy serves', async () => {
    const socket = path.join(dir, 'proxy.sock');
    const first = await KernelProxy.start({ socket, pool: pool.url, log: () => {} });
    try {
      await assert.rejects(KernelProxy.start({ socket, pool: pool.url, log: () => {} }), /already serves/);
      assert.ok(fs.existsSync(socket), 'the live socket is left alone');
    } finally {
      await first.stop();
    }
  });
});

