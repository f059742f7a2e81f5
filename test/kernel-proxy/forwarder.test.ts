import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Flag, HEADER_SIZE, Op } from '../../gpu-runtime/protocol/generated/ops';
import { CUresult } from '../../gpu-runtime/protocol/generated/cuResult';
import { encodeFrame, unpackValue } from '../../gpu-runtime/protocol/ts/codec';
import { KernelProxy } from '../../kernel-proxy/src/proxy';
import { FakePool, pattern } from './fakePool';
import { TestClient, until } from './testClient';

function fixed(...u64s: number[]): Buffer {
  const b = Buffer.alloc(u64s.length * 8);
  u64s.forEach((v, i) => b.writeUInt32LE(v, i * 8));
  return b;
}

describe('kernel-proxy forwarding', function () {
  let dir: string;
  let pool: FakePool;
  let proxy: KernelProxy;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-fw-'));
    fs.writeFileSync(path.join(dir, 'token'), 'sekret-token\n', { mode: 0o600 });
    pool = await FakePool.start();
    proxy = await KernelProxy.start({ socket: path.join(dir, 's', 'proxy.sock'), pool: pool.url, tokenFile: path.join(dir, 'token'), gpuType: 'A100-40GB', log: () => {}, pingIntervalMs: 0 });
  });

  afterEach(async () => {
    await proxy.stop();
    await pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('makes the socket directory 0700 and the sockets 0600', () => {
    assert.equal(fs.statSync(path.dirname(proxy.socketPath)).mode & 0o777, 0o700);
    assert.equal(fs.statSync(proxy.socketPath).mode & 0o777, 0o600);
    assert.equal(fs.statSync(proxy.ctlPath).mode & 0o777, 0o600);
  });

  it('fills the pool token and the proxy GPU type into HELLO and keeps the client fields', async () => {
    const c = await TestClient.connect(proxy.socketPath);
    const { frame, value } = await c.hello('T4');
    assert.equal(frame.result, 0);
    assert.equal(value.session, 's-1');
    const hello = pool.sessionConns()[0].hello!;
    assert.equal(hello.token, 'sekret-token');
    assert.equal(hello.gpuType, 'A100-40GB');
    assert.equal(hello.purpose, 'session');
    assert.deepEqual(hello.client, { pid: 4242, host: 'h', argv0: 'python3', runtime: 'test' });
    const st = proxy.status();
    assert.deepEqual(st.sessions, [{ id: 's-1', pid: 4242, argv0: 'python3', gpuType: 'A100-40GB', device: 'Tesla T4', state: 'attached' }]);
    c.sock.destroy();
  });

  it('passes frames byte for byte both ways, bulk split across chunks included', async () => {
    const c = await TestClient.connect(proxy.socketPath);
    // The HELLO and the first frames in one write, then a 1 MiB copy in odd pieces.
    const launch = encodeFrame(Op.LAUNCH, { flags: Flag.NO_REPLY, seq: 2, stream: 3, body: Buffer.alloc(40, 9), bulk: pattern(28) });
    const htod = encodeFrame(Op.MEMCPY_HTOD, { flags: Flag.NO_REPLY, seq: 3, body: fixed(1 << 30), bulk: pattern(1 << 20, 3) });
    const sync = encodeFrame(Op.CTX_SYNC, { seq: 4 });
    const upstream = Buffer.concat([...launch, ...htod, ...sync]);
    c.sock.write(Buffer.concat([c.helloFrame(), upstream.subarray(0, 100)]));
    for (let o = 100; o < upstream.length; o += 65521) c.sock.write(upstream.subarray(o, Math.min(upstream.length, o + 65521)));
    await c.waitFor((f) => f.op === Op.CTX_SYNC && f.seq === 4);
    const conn = pool.sessionConns()[0];
    assert.ok(Buffer.concat(conn.raw).equals(upstream), 'pool received exactly what the client sent after HELLO');

    const dtoh = encodeFrame(Op.MEMCPY_DTOH, { seq: 5, body: fixed(1 << 30, 300000) })[0];
    c.sock.write(dtoh);
    const reply = await c.waitFor((f) => f.op === Op.MEMCPY_DTOH && f.seq === 5);
    assert.ok(reply.bulk.equals(pattern(300000, 5)));
    const all = Buffer.concat(c.raw);
    const helloReplyLen = HEADER_SIZE + all.readUInt32LE(0);
    const expected = Buffer.concat([...encodeFrame(Op.CTX_SYNC, { flags: Flag.REPLY, seq: 4 }), ...encodeFrame(Op.MEMCPY_DTOH, { flags: Flag.REPLY, seq: 5, bulk: pattern(300000, 5) })]);
    assert.ok(all.subarray(helloReplyLen).equals(expected), 'client received exactly what the pool sent');
    c.sock.destroy();
  });

  it('counts bytes, ops, replies, errors and round trips', async () => {
    const c = await TestClient.connect(proxy.socketPath);
    await c.hello();
    const sent = [
      encodeFrame(Op.LAUNCH, { flags: Flag.NO_REPLY, seq: 2, body: Buffer.alloc(40), bulk: Buffer.alloc(16) }),
      encodeFrame(Op.LAUNCH, { flags: Flag.NO_REPLY, seq: 3, body: Buffer.alloc(40), bulk: Buffer.alloc(16) }),
      encodeFrame(Op.EVENT_QUERY, { seq: 4, body: Buffer.alloc(4) }),
      encodeFrame(Op.CTX_SYNC, { seq: 5 }),
    ];
    for (const f of sent) for (const p of f) c.sock.write(p);
    await c.waitFor((f) => f.op === Op.CTX_SYNC);
    await until(() => proxy.traffic.queueDepth === 0, 2000, 'queue depth 0');
    const s = proxy.stats();
    const helloBytes = pool.sessionConns()[0].frames[0].length + HEADER_SIZE;
    assert.equal(s.bytesToDevice, helloBytes + 2 * (24 + 56) + (24 + 4) + 24);
    const helloReply = Buffer.concat(c.raw).readUInt32LE(0) + HEADER_SIZE;
    assert.equal(s.bytesFromDevice, helloReply + 24 + 24);
    assert.deepEqual({ count: s.ops.LAUNCH.count, bytes: s.ops.LAUNCH.bytes }, { count: 2, bytes: 160 });
    assert.equal(s.ops.CTX_SYNC.count, 1);
    assert.ok(s.ops.CTX_SYNC.timeMs > 0);
    assert.equal(s.errors, 1, 'EVENT_QUERY answered NOT_READY');
    assert.equal(s.rtt.samples, 2, 'two sync round trips (the HELLO is not one)');
    assert.equal(s.queueDepth, 0);
    assert.equal(s.sessions, 1);
    assert.equal(s.gpuType, 'A100-40GB');
    c.sock.destroy();
  });

  it('shows queued sessions with their position until attached', async () => {
    pool.queueFirst = 2;
    pool.queueDelayMs = 150;
    const c = await TestClient.connect(proxy.socketPath);
    c.sock.write(c.helloFrame());
    await until(() => proxy.status().sessions[0]?.queuePosition === 2, 2000, 'queued at 2');
    assert.equal(proxy.status().sessions[0].state, 'queued');
    await until(() => proxy.status().sessions[0]?.queuePosition === 1, 2000, 'queued at 1');
    await c.waitFor((f) => f.op === Op.HELLO);
    assert.equal(proxy.status().sessions[0].state, 'attached');
    assert.equal(proxy.status().sessions[0].queuePosition, undefined);
    assert.equal(c.frames.filter((f) => f.op === Op.QUEUED).length, 2, 'QUEUED notifications reach the client');
    c.sock.destroy();
  });

  it('closes the pool side when the intercept disconnects', async () => {
    const c = await TestClient.connect(proxy.socketPath);
    await c.hello();
    const conn = pool.sessionConns()[0];
    let closed = false;
    conn.sock.on('close', () => (closed = true));
    c.sock.destroy();
    await until(() => closed, 3000, 'pool side closed');
    await until(() => proxy.status().sessions.length === 0, 2000, 'session removed');
  });

  it('closes the intercept side when the pool disconnects', async () => {
    const c = await TestClient.connect(proxy.socketPath);
    await c.hello();
    pool.sessionConns()[0].sock.destroy();
    await c.waitClosed(3000);
  });

  it('answers a HELLO refused by the pool with the pool\'s error, then closes', async () => {
    pool.helloResult = CUresult.CUDA_ERROR_NOT_PERMITTED;
    const c = await TestClient.connect(proxy.socketPath);
    const { frame, value } = await c.hello();
    assert.equal(frame.result, CUresult.CUDA_ERROR_NOT_PERMITTED);
    assert.match(String(value.message), /refused/);
    await c.waitClosed(3000);
    assert.equal(proxy.stats().errors, 1);
  });

  it('refuses a HELLO with bulk bytes (it would be buffered whole)', async () => {
    const c = await TestClient.connect(proxy.socketPath);
    c.sock.write(Buffer.concat(encodeFrame(Op.HELLO, { seq: 8, body: Buffer.from([0x90]), bulk: Buffer.alloc(1000) })));
    const f = await c.waitFor((x) => x.seq === 8);
    assert.equal(f.result, CUresult.CUDA_ERROR_INVALID_VALUE);
    assert.match(String((unpackValue(f.body) as { message: string }).message), /no bulk/);
    await c.waitClosed(3000);
    assert.equal(pool.sessionConns().length, 0);
  });

  it('refuses a first frame that is not HELLO', async () => {
    const c = await TestClient.connect(proxy.socketPath);
    c.sock.write(encodeFrame(Op.CTX_SYNC, { seq: 9 })[0]);
    const f = await c.waitFor((x) => x.seq === 9);
    assert.equal(f.result, CUresult.CUDA_ERROR_NOT_INITIALIZED);
    await c.waitClosed(3000);
  });

  it('closes a session whose intercept sends a broken header, and keeps serving others', async () => {
    const c = await TestClient.connect(proxy.socketPath);
    await c.hello();
    const bad = Buffer.alloc(HEADER_SIZE);
    bad.writeUInt32LE(0xfffffff0, 0);
    c.sock.write(bad);
    await c.waitClosed(3000);
    const d = await TestClient.connect(proxy.socketPath);
    assert.equal((await d.hello()).frame.result, 0);
    d.sock.destroy();
  });
});

describe('kernel-proxy with the pool down', () => {
  it('answers HELLO promptly with CUDA_ERROR_DEVICE_UNAVAILABLE and a message', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-down-'));
    // A port that was just free: nothing listens there.
    const port = await new Promise<number>((r) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => r(p));
      });
    });
    const proxy = await KernelProxy.start({ socket: path.join(dir, 'proxy.sock'), pool: `tcp://127.0.0.1:${port}`, log: () => {} });
    try {
      const c = await TestClient.connect(proxy.socketPath);
      const t0 = Date.now();
      const { frame, value } = await c.hello();
      assert.ok(Date.now() - t0 < 2000, 'prompt');
      assert.equal(frame.result, CUresult.CUDA_ERROR_DEVICE_UNAVAILABLE);
      assert.match(String(value.message), /cannot reach the GPU pool/);
      await c.waitClosed(3000);
      const st = proxy.status();
      assert.equal(st.pool.connected, false);
      assert.match(st.pool.error ?? '', /ECONNREFUSED/);
      assert.equal(unpackValue(frame.body) !== null, true);
    } finally {
      await proxy.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(fs.existsSync(proxy.socketPath), false, 'socket unlinked on stop');
  });
});
