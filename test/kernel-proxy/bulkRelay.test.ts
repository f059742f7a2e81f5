// Bulk copies through the forwarder's own read buffers: a large read is written on uncopied and its buffer
// lent until the write is done, so a slow reader on the far side must never see a buffer reused under it.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Flag, Op } from '../../gpu-runtime/protocol/generated/ops';
import { encodeFrame } from '../../gpu-runtime/protocol/ts/codec';
import { KernelProxy } from '../../kernel-proxy/src/proxy';
import { ReadBuffers } from '../../kernel-proxy/src/readBuffers';
import { FakePool } from './fakePool';
import { TestClient } from './testClient';

const MiB = 1 << 20;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Bytes that never repeat at a power-of-two stride (fakePool's pattern repeats every 256 bytes, which would
 * hide a read buffer overwritten at an aligned offset). */
function noise(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

describe('kernel-proxy bulk relay through its own read buffers', function () {
  this.timeout(60000);
  let dir: string;
  let pool: FakePool;
  let proxy: KernelProxy;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-bulk-'));
    pool = await FakePool.start();
    proxy = await KernelProxy.start({ socket: path.join(dir, 's', 'proxy.sock'), pool: pool.url, log: () => {}, pingIntervalMs: 0 });
  });

  afterEach(async () => {
    await proxy.stop();
    await pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps a 16 MiB host-to-device copy exact while the pool stops reading, and counts its bytes', async () => {
    const c = await TestClient.connect(proxy.socketPath);
    await c.hello();
    const conn = pool.sessionConns()[0];
    conn.sock.pause(); // writes towards the pool queue up in the proxy, holding lent read buffers
    const before = proxy.stats().bytesToDevice;
    const body = Buffer.alloc(8);
    const upstream = Buffer.concat([
      ...encodeFrame(Op.MEMCPY_HTOD, { flags: Flag.NO_REPLY, seq: c.nextSeq(), body, bulk: noise(16 * MiB, 11) }),
      ...encodeFrame(Op.MEMCPY_HTOD, { flags: Flag.NO_REPLY, seq: c.nextSeq(), body, bulk: noise(100, 12) }),
      ...encodeFrame(Op.CTX_SYNC, { seq: 99 }),
    ]);
    c.sock.write(upstream);
    await sleep(300);
    conn.sock.resume();
    await c.waitFor((f) => f.op === Op.CTX_SYNC && f.seq === 99, 30000);
    assert.ok(Buffer.concat(conn.raw).equals(upstream), 'the pool received exactly what the client sent');
    assert.equal(proxy.stats().bytesToDevice - before, upstream.length);
    c.sock.destroy();
  });

  it('keeps a 12 MiB device-to-host reply exact while the client stops reading', async () => {
    const c = await TestClient.connect(proxy.socketPath);
    await c.hello();
    const size = 12 * MiB;
    const conn = pool.sessionConns()[0];
    c.sock.pause(); // the proxy's writes towards the client queue up, holding lent read buffers
    // One large write, so that the proxy's reads are large enough to be passed on uncopied.
    const bulk = noise(size, 50);
    const reply = encodeFrame(Op.MEMCPY_DTOH, { flags: Flag.REPLY, seq: 50, bulk });
    conn.sock.write(Buffer.concat(reply));
    await sleep(300);
    c.sock.resume();
    const f = await c.waitFor((x) => x.op === Op.MEMCPY_DTOH && x.seq === 50, 30000);
    assert.equal(f.bulk.length, size);
    assert.ok(f.bulk.equals(bulk), 'bulk bytes exact');
    c.sock.destroy();
  });
});

describe('kernel-proxy ReadBuffers', () => {
  it('hands out another buffer while one is lent, and reuses it once its write is done', () => {
    const rb = new ReadBuffers(1024);
    const a = rb.next();
    assert.equal(rb.next(), a, 'not lent: the same buffer again');
    const done = rb.lend(a);
    const b = rb.next();
    assert.notEqual(b, a, 'a lent buffer is not read into');
    assert.equal(rb.next(), b);
    done();
    rb.lend(b);
    assert.equal(rb.next(), a, 'a returned buffer is reused');
    assert.equal(a.length, 1024);
  });
});
