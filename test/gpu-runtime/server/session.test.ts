import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { encodeMemcpyDtohArgs, encodeModuleUnloadArgs, encodeStreamDestroyArgs, Op } from '../../../gpu-runtime/protocol/generated/ops';
import { CUresult } from '../../../gpu-runtime/protocol/generated/cuResult';
import { packArgs } from '../../../gpu-runtime/protocol/ts/codec';
import { startFakeServer, type Fixture } from '../../helpers/serverFixture';
import { ReplyError, TestClient, unpackReply } from '../../helpers/testClient';

const MODULE = Buffer.from(`
.version 8.0
.global .u32 g_counter;
.global .f32 g_table[16];
.visible .entry fill_u32(.param .u64 p, .param .u32 v, .param .u32 n) { ret; }
.visible .entry add_one_f32(.param .u64 p, .param .u32 n) { ret; }
.visible .entry fault() { ret; }
.visible .entry say(.param .u32 k) { ret; }
`);

async function fails(p: Promise<unknown>, code: number, text?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ReplyError, String(e));
    assert.equal(e.result, code, e.message);
    if (text) assert.match(e.serverMessage, text);
    return true;
  });
}

const u32s = (...v: number[]): Buffer => Buffer.from(new Uint32Array(v).buffer);

describe('server session', () => {
  let fx: Fixture;
  let c: TestClient;
  before(async () => {
    fx = await startFakeServer([{ type: 'T4', count: 3 }], { quota: { handles: 8, queuedOps: 64 }, memQuota: 2 ** 20 });
  });
  after(() => fx.server.close());
  beforeEach(async () => {
    c = await TestClient.session(fx.port);
  });
  afterEach(() => c.close());

  it('copies host to device and back, device to device, and sets memory', async () => {
    const a = c.alloc(4096), b = c.alloc(4096);
    const data = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) & 0xff));
    c.htod(a, data);
    c.dtod(b, a, 4096);
    assert.deepEqual(await c.dtoh(b, 4096), data);
    c.memset(a + 16, 0xdeadbeef, 4, 2);
    const got = await c.dtoh(a, 32);
    assert.equal(got.readUInt32LE(16), 0xdeadbeef);
    assert.equal(got.readUInt32LE(20), 0xdeadbeef);
    assert.equal(got.readUInt32LE(24), data.readUInt32LE(24));
  });

  it('checks every range against the session allocations (INVALID_VALUE)', async () => {
    const a = c.alloc(256);
    await fails(c.dtoh(a + 128, 256), CUresult.CUDA_ERROR_INVALID_VALUE, /not inside one allocation/);
    await fails(c.dtoh(a - 256, 16), CUresult.CUDA_ERROR_INVALID_VALUE);
    c.htod(a + 200, Buffer.alloc(100));
    await fails(c.sync(), CUresult.CUDA_ERROR_INVALID_VALUE, /MEMCPY_HTOD/);
    await c.sync(); // the deferred error was taken by the first sync
    await fails(c.allocAt(c.hello!.va.base + c.hello!.va.size - 16, 64), CUresult.CUDA_ERROR_INVALID_VALUE, /va window/);
    await fails(c.allocAt(a + 64, 64), CUresult.CUDA_ERROR_INVALID_VALUE, /overlaps/);
  });

  it('returns the first deferred error of no-reply ops with the next synchronising reply', async () => {
    const a = c.alloc(64);
    c.free(a + 8); // not an allocation
    c.destroyStream(77); // unknown handle: a later error, not kept
    const dtohBody = Buffer.alloc(16);
    encodeMemcpyDtohArgs(dtohBody, 0, { src: a, size: 64 });
    await fails(c.request(Op.MEMCPY_DTOH, { body: dtohBody }), CUresult.CUDA_ERROR_INVALID_VALUE, /not an allocation/);
    await c.sync();
    c.destroyStream(77);
    await fails(c.sync(), CUresult.CUDA_ERROR_INVALID_HANDLE, /stream 77/);
  });

  it('enforces the memory quota with OUT_OF_MEMORY and frees on MEM_FREE', async () => {
    const base = c.hello!.va.base;
    await c.allocAt(base, 2 ** 20 - 256);
    await fails(c.allocAt(base + 2 ** 20, 512), CUresult.CUDA_ERROR_OUT_OF_MEMORY, /quota/);
    c.free(base);
    await c.allocAt(base + 2 ** 20, 512);
    assert.equal((await c.stats()).memUsed, 512);
  });

  it('enforces the handle quota with OUT_OF_MEMORY, and refuses reused or reserved handles', async () => {
    for (let i = 0; i < 8; i++) c.createEvent();
    c.createStream();
    await fails(c.sync(), CUresult.CUDA_ERROR_OUT_OF_MEMORY, /handle quota/);
    const r = await c.requestRaw(Op.EVENT_CREATE, { body: u32s(1, 0) });
    assert.equal(r.result, CUresult.CUDA_ERROR_INVALID_VALUE);
    const s0 = await c.requestRaw(Op.STREAM_CREATE, { body: u32s(0, 0, 0) });
    assert.equal(s0.result, CUresult.CUDA_ERROR_INVALID_VALUE);
  });

  it('answers unknown streams, events, modules and kernels with INVALID_HANDLE', async () => {
    const a = c.alloc(64);
    await fails(c.dtoh(a, 4, 9), CUresult.CUDA_ERROR_INVALID_HANDLE, /stream 9/);
    await fails(c.eventSync(5), CUresult.CUDA_ERROR_INVALID_HANDLE, /event 5/);
    await fails(c.request(Op.STREAM_DESTROY, { body: (() => { const b = Buffer.alloc(4); encodeStreamDestroyArgs(b, 0, { handle: 0 }); return b; })() }), CUresult.CUDA_ERROR_INVALID_HANDLE);
    await fails(c.request(Op.MODULE_UNLOAD, { body: (() => { const b = Buffer.alloc(4); encodeModuleUnloadArgs(b, 0, { module: 3 }); return b; })() }), CUresult.CUDA_ERROR_INVALID_HANDLE);
    const { module } = await c.loadModule(MODULE);
    const launch = Buffer.alloc(40);
    launch.writeUInt32LE(module, 0);
    launch.writeUInt32LE(99, 4);
    await fails(c.request(Op.LAUNCH, { body: launch }), CUresult.CUDA_ERROR_INVALID_HANDLE, /no kernel 99/);
    // Per-thread default stream (1) always exists.
    await c.dtoh(a, 4, 1);
  });

  it('loads a module, launches its kernels with packed params, and reads its globals', async () => {
    const { module, info } = await c.loadModule(MODULE);
    assert.deepEqual(info.kernels.map((k) => k.name), ['fill_u32', 'add_one_f32', 'fault', 'say']);
    assert.deepEqual(info.kernels[0].params, [[0, 8], [8, 4], [12, 4]]);
    assert.equal(info.kernels[0].paramSize, 16);
    const a = c.alloc(64);
    c.launch(module, 0, [1], [32], [a, 7, 16]);
    assert.deepEqual(await c.dtoh(a, 16 * 4), u32s(...new Array(16).fill(7)));
    const g = info.globals.find((x) => x.name === 'g_table')!;
    assert.equal(g.size, 64);
    c.htod(g.addr, Buffer.from(new Float32Array([1, 2, 3, 4]).buffer));
    c.launch(module, 1, [1], [32], [g.addr, 4]);
    const t = await c.dtoh(g.addr, 16);
    assert.deepEqual([0, 4, 8, 12].map((o) => t.readFloatLE(o)), [2, 3, 4, 5]);
    await fails(c.dtoh(g.addr + 60, 8), CUresult.CUDA_ERROR_INVALID_VALUE);
    // Launch argument checks.
    const bad = Buffer.alloc(40);
    bad.writeUInt32LE(module, 0);
    bad.writeUInt32LE(0, 4);
    for (let o = 8; o < 32; o += 4) bad.writeUInt32LE(1, o);
    bad.writeUInt32LE(2048, 20);
    await fails(c.request(Op.LAUNCH, { body: bad, bulk: Buffer.alloc(16) }), CUresult.CUDA_ERROR_INVALID_VALUE, /threads per block/);
    bad.writeUInt32LE(1, 20);
    await fails(c.request(Op.LAUNCH, { body: bad, bulk: Buffer.alloc(8) }), CUresult.CUDA_ERROR_INVALID_VALUE, /parameter bytes/);
  });

  it('delivers device printf in PRINTF notifications before the sync reply', async () => {
    const { module } = await c.loadModule(MODULE);
    c.launch(module, 3, [3], [1], [42]);
    let printedBeforeReply = -1;
    const sync = c.sync().then(() => (printedBeforeReply = c.printf.length));
    await sync;
    assert.equal(printedBeforeReply, 1);
    assert.equal(c.printf.join(''), 'hello 42\nhello 42\nhello 42\n');
  });

  it('makes a fault sticky: every later call fails with it, PING still works', async () => {
    const { module } = await c.loadModule(MODULE);
    const a = c.alloc(64);
    c.launch(module, 2, [1], [1], []);
    await fails(c.sync(), CUresult.CUDA_ERROR_ILLEGAL_ADDRESS);
    await fails(c.sync(), CUresult.CUDA_ERROR_ILLEGAL_ADDRESS);
    await fails(c.dtoh(a, 4), CUresult.CUDA_ERROR_ILLEGAL_ADDRESS);
    await fails(c.loadModule(MODULE), CUresult.CUDA_ERROR_ILLEGAL_ADDRESS);
    assert.ok((await c.ping()) > 0);
    assert.equal((await c.stats()).allocations, 1);
  });

  it('loads a cached module by hash; a miss is FILE_NOT_FOUND; a wrong hash is refused', async () => {
    const image = Buffer.concat([MODULE, Buffer.from(`// ${Math.random()}\n`)]);
    const first = await c.loadModule(image, 'ptx', { cacheFirst: true });
    assert.equal(first.cacheHit, false);
    const other = await TestClient.session(fx.port);
    try {
      const second = await other.loadModule(image, 'ptx', { cacheFirst: true });
      assert.equal(second.cacheHit, true);
      assert.deepEqual(second.info.kernels.map((k) => k.name), first.info.kernels.map((k) => k.name));
      const hash = createHash('sha256').update('something else').digest('hex');
      await fails(other.request(Op.MODULE_LOAD, { body: packArgs(Op.MODULE_LOAD, { module: 50, hash, kind: 'ptx', size: 0, name: 'x' }) }), CUresult.CUDA_ERROR_FILE_NOT_FOUND);
      await fails(other.request(Op.MODULE_LOAD, { body: packArgs(Op.MODULE_LOAD, { module: 50, hash, kind: 'ptx', size: image.length, name: 'x' }), bulk: image }), CUresult.CUDA_ERROR_INVALID_VALUE, /does not match/);
      await fails(other.request(Op.MODULE_LOAD, { body: packArgs(Op.MODULE_LOAD, { module: 50, hash, kind: 'elf', size: 0, name: 'x' }) }), CUresult.CUDA_ERROR_INVALID_VALUE, /kind/);
    } finally {
      other.close();
    }
  });

  it('times events and reports session stats by op', async () => {
    const e0 = c.createEvent(), e1 = c.createEvent();
    c.recordEvent(e0);
    c.recordEvent(e1);
    await c.eventSync(e1);
    const ms = await c.elapsed(e0, e1);
    assert.ok(ms >= 0 && ms < 1000, String(ms));
    const st = await c.stats();
    assert.equal(st.ops.EVENT_CREATE, 2);
    assert.equal(st.ops.EVENT_RECORD, 2);
    assert.equal(st.events, 2);
    assert.ok(st.bytesIn > 0 && st.bytesOut > 0);
    const q = await c.requestRaw(Op.STREAM_QUERY);
    assert.equal(q.result, 0);
    assert.equal(unpackReply(q.body), undefined);
  });

  it('answers features the server does not implement with NOT_SUPPORTED', async () => {
    const texture = { address: [1, 1, 1], filter: 0, flags: 0, border: [0, 0, 0, 0] };
    await fails(c.request(Op.TEXOBJ_CREATE, { body: packArgs(Op.TEXOBJ_CREATE, { handle: 1, resource: { type: 1 }, texture }) }), CUresult.CUDA_ERROR_NOT_SUPPORTED, /mipmapped/);
  });
});
