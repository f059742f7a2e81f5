import { strict as assert } from 'node:assert';
import { Flag, HEADER_SIZE, MAX_FRAME, Op } from '../../../gpu-runtime/protocol/generated/ops';
import { CUresult } from '../../../gpu-runtime/protocol/generated/cuResult';
import { encodeFrame, writeHeader } from '../../../gpu-runtime/protocol/ts/codec';
import { startFakeServer, waitFor, type Fixture } from '../../helpers/serverFixture';
import { TestClient, unpackReply } from '../../helpers/testClient';

function header(h: { length: number; op: number; bodyLen: number; seq?: number; flags?: number }): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  writeHeader(b, 0, { seq: 1, flags: 0, stream: 0, result: 0, ...h });
  return b;
}

describe('server robustness', () => {
  let fx: Fixture;
  let c: TestClient;
  before(async () => {
    fx = await startFakeServer([{ type: 'T4', count: 8 }]);
  });
  after(() => fx.server.close());
  beforeEach(async () => {
    c = await TestClient.session(fx.port);
  });
  afterEach(() => c.close());

  it('answers an unknown op with NOT_SUPPORTED and stays usable; with NO_REPLY the error is deferred', async () => {
    const r = await c.requestRaw(4321);
    assert.equal(r.result, CUresult.CUDA_ERROR_NOT_SUPPORTED);
    assert.match(unpackReply(r.body).message, /unknown op 4321/);
    c.post(4321);
    const s = await c.requestRaw(Op.CTX_SYNC);
    assert.equal(s.result, CUresult.CUDA_ERROR_NOT_SUPPORTED);
    await c.sync();
  });

  it('answers a malformed body with INVALID_VALUE and stays usable', async () => {
    const short = await c.requestRaw(Op.MEM_ALLOC, { body: Buffer.alloc(7) });
    assert.equal(short.result, CUresult.CUDA_ERROR_INVALID_VALUE);
    assert.match(unpackReply(short.body).message, /expected 16/);
    const garbage = await c.requestRaw(Op.MODULE_LOAD, { body: Buffer.from([0xc1, 0xff, 0x00]) });
    assert.equal(garbage.result, CUresult.CUDA_ERROR_INVALID_VALUE);
    const notArray = await c.requestRaw(Op.MODULE_LOAD, { body: Buffer.from([0x05]) });
    assert.equal(notArray.result, CUresult.CUDA_ERROR_INVALID_VALUE);
    const huge = Buffer.alloc(16);
    huge.writeUInt32LE(0xffffffff, 4); // address above 2^53
    assert.equal((await c.requestRaw(Op.MEM_ALLOC, { body: huge })).result, CUresult.CUDA_ERROR_INVALID_VALUE);
    const bulkOnSync = await c.requestRaw(Op.CTX_SYNC, { bulk: Buffer.alloc(3) });
    assert.equal(bulkOnSync.result, CUresult.CUDA_ERROR_INVALID_VALUE);
    await c.sync();
  });

  it('answers an oversize length with an error frame and closes', async () => {
    c.writeRaw(header({ length: MAX_FRAME + 1, op: Op.MEMCPY_HTOD, bodyLen: 8, seq: 7 }));
    await c.closed;
    const e = c.unsolicited.find((f) => f.op === 0);
    assert.ok(e, 'an error frame before the close');
    assert.equal(e.seq, 7);
    assert.equal(e.result, CUresult.CUDA_ERROR_INVALID_VALUE);
    assert.equal(unpackReply(e.body).code, 'RGPU_ERR_FRAME_TOO_LARGE');
  });

  it('closes on a body length beyond the frame length (garbage header)', async () => {
    c.writeRaw(header({ length: 4, op: Op.CTX_SYNC, bodyLen: 4000 }));
    await c.closed;
    assert.equal(unpackReply(c.unsolicited[0].body).code, 'RGPU_ERR_BAD_HEADER');
  });

  it('survives a truncated frame followed by a close, and frees the session', async () => {
    const used = () => fx.server.pool.sessionCount;
    const before = used();
    c.writeRaw(header({ length: 1000, op: Op.MEMCPY_HTOD, bodyLen: 8 }));
    c.writeRaw(Buffer.alloc(100));
    c.socket.end();
    await c.closed;
    await waitFor(() => used() === before - 1, 2000, 'session freed');
    const d = await TestClient.session(fx.port);
    await d.sync();
    d.close();
  });

  it('closes a connection that never says HELLO', async () => {
    const fx2 = await startFakeServer([{ type: 'T4' }], { helloTimeoutMs: 100 });
    try {
      const idle = await TestClient.connect({ port: fx2.port });
      const t0 = Date.now();
      await idle.closed;
      assert.ok(Date.now() - t0 >= 50, 'not before the timeout');
      const ok = await TestClient.session(fx2.port);
      await new Promise((r) => setTimeout(r, 200));
      await ok.sync(); // a session that said HELLO stays
      ok.close();
    } finally {
      await fx2.server.close();
    }
  });

  it('a malformed HELLO is refused and closed; frames split byte by byte still decode', async () => {
    const raw = await TestClient.connect({ port: fx.port });
    const r = await raw.requestRaw(Op.HELLO, { body: Buffer.from([0x93, 0xc1]) });
    assert.equal(r.result, CUresult.CUDA_ERROR_INVALID_VALUE);
    await raw.closed;

    const a = c.alloc(16);
    const frame = Buffer.concat(encodeFrame(Op.MEMCPY_HTOD, { seq: 500, flags: Flag.NO_REPLY, body: (() => { const b = Buffer.alloc(8); b.writeUInt32LE(a % 2 ** 32, 0); b.writeUInt32LE(Math.floor(a / 2 ** 32), 4); return b; })(), bulk: Buffer.from('split-byte-frame') }));
    for (const byte of frame) {
      c.writeRaw(Buffer.from([byte]));
      await new Promise((res) => setImmediate(res));
    }
    assert.equal((await c.dtoh(a, 16)).toString(), 'split-byte-frame');
  });
});
