// ARRAY_* / TEXOBJ_* / SURFOBJ_* on the server: arrays are session allocations with a recorded layout,
// texture resources are resolved against the session's own arrays and allocations, every bad request is a
// clear error for that call, and a backend without texture support answers NOT_SUPPORTED.
import { strict as assert } from 'node:assert';
import { encodeArrayCreateArgs, encodeArrayDestroyArgs, encodeMemcpyHtod2dArgs, encodeTexobjDestroyArgs, Op } from '../../../gpu-runtime/protocol/generated/ops';
import { CUresult } from '../../../gpu-runtime/protocol/generated/cuResult';
import { packArgs } from '../../../gpu-runtime/protocol/ts/codec';
import { startServer, type RunningServer } from '../../../gpu-runtime/server/src/main';
import { startFakeServer, type Fixture } from '../../helpers/serverFixture';
import { ReplyError, TestClient } from '../../helpers/testClient';

async function fails(p: Promise<unknown>, code: number, text: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ReplyError, String(e));
    assert.equal(e.result, code, e.message);
    assert.match(e.serverMessage, text);
    return true;
  });
}

const FLOAT = 0x20;
const texture = { address: [1, 1, 1], filter: 0, flags: 0, border: [0, 0, 0, 0] };

function arrayCreate(c: TestClient, addr: number, w: number, h: number, d: number, format = FLOAT, channels = 1, flags = 0): Promise<unknown> {
  const b = Buffer.alloc(44);
  encodeArrayCreateArgs(b, 0, { addr, width: w, height: h, depth: d, format, channels, flags });
  return c.request(Op.ARRAY_CREATE, { body: b });
}
const texCreate = (c: TestClient, handle: number, resource: unknown, tex: unknown = texture): Promise<unknown> =>
  c.request(Op.TEXOBJ_CREATE, { body: packArgs(Op.TEXOBJ_CREATE, { handle, resource, texture: tex, view: null }) });

describe('server: CUDA arrays and texture/surface objects', function () {
  this.timeout(30000);

  describe('on the emulated device', () => {
    let server: RunningServer;
    let c: TestClient;
    before(async () => { server = await startServer({ port: 0, devices: 'emulated:T4' }); });
    after(() => server.close());
    beforeEach(async () => { c = await TestClient.session(server.address.port); });
    afterEach(() => c.close());

    it('keeps an array as packed rows that 2D copies fill, and creates and destroys objects over it', async () => {
      const addr = c.allocAddress(4 * 4 * 3);
      await arrayCreate(c, addr, 4, 3, 0);
      const rows = Buffer.from(new Float32Array(12).map((_, i) => i).buffer);
      const b = Buffer.alloc(32);
      encodeMemcpyHtod2dArgs(b, 0, { dst: addr, dpitch: 16, width: 16, height: 3 });
      await c.request(Op.MEMCPY_HTOD_2D, { body: b, bulk: rows });
      assert.deepEqual(await c.dtoh(addr, 48), rows);
      await texCreate(c, 7, { type: 0, array: addr });
      await fails(texCreate(c, 7, { type: 0, array: addr }), CUresult.CUDA_ERROR_INVALID_VALUE, /already in use/);
      await c.request(Op.SURFOBJ_CREATE, { body: packArgs(Op.SURFOBJ_CREATE, { handle: 7, resource: { type: 0, array: addr } }) })
        .then(() => assert.fail('surface on an array without SURFACE_LDST'), (e: ReplyError) => assert.equal(e.result, CUresult.CUDA_ERROR_INVALID_VALUE));
      const d = Buffer.alloc(8);
      encodeTexobjDestroyArgs(d, 0, { handle: 7 });
      await c.request(Op.TEXOBJ_DESTROY, { body: d });
      await fails(c.request(Op.TEXOBJ_DESTROY, { body: d }), CUresult.CUDA_ERROR_INVALID_HANDLE, /not a live object/);
      const x = Buffer.alloc(8);
      encodeArrayDestroyArgs(x, 0, { addr });
      await c.request(Op.ARRAY_DESTROY, { body: x });
      await fails(c.dtoh(addr, 16), CUresult.CUDA_ERROR_INVALID_VALUE, /not inside one allocation/);
      await fails(c.request(Op.ARRAY_DESTROY, { body: x }), CUresult.CUDA_ERROR_INVALID_HANDLE, /not a CUDA array/);
    });

    it('refuses bad arrays and resources outside the session, and mipmapped arrays and views', async () => {
      await fails(arrayCreate(c, c.allocAddress(256), 4, 1, 0, 0xb0), CUresult.CUDA_ERROR_NOT_SUPPORTED, /format 0xb0/);
      await fails(arrayCreate(c, c.allocAddress(256), 4, 1, 0, FLOAT, 3), CUresult.CUDA_ERROR_INVALID_VALUE, /3 channels/);
      const plain = c.alloc(256);
      await fails(texCreate(c, 1, { type: 0, array: plain }), CUresult.CUDA_ERROR_INVALID_HANDLE, /not a CUDA array/);
      await fails(texCreate(c, 1, { type: 2, addr: plain, format: FLOAT, channels: 1, size: 512 }), CUresult.CUDA_ERROR_INVALID_VALUE, /not inside one allocation/);
      await fails(texCreate(c, 1, { type: 3, addr: plain, format: FLOAT, channels: 1, width: 8, height: 5, pitch: 64 }), CUresult.CUDA_ERROR_INVALID_VALUE, /not inside one allocation/);
      await fails(texCreate(c, 1, { type: 1 }), CUresult.CUDA_ERROR_NOT_SUPPORTED, /mipmapped/);
      await fails(texCreate(c, 1, { type: 2, addr: plain, format: FLOAT, channels: 1, size: 256 }, { ...texture, address: [1, 1] }), CUresult.CUDA_ERROR_INVALID_VALUE, /3 modes/);
      await fails(c.request(Op.TEXOBJ_CREATE, { body: packArgs(Op.TEXOBJ_CREATE, { handle: 1, resource: { type: 2, addr: plain, format: FLOAT, channels: 1, size: 256 }, texture, view: {} }) }),
        CUresult.CUDA_ERROR_NOT_SUPPORTED, /views/);
      await fails(texCreate(c, 0, { type: 2, addr: plain, format: FLOAT, channels: 1, size: 256 }), CUresult.CUDA_ERROR_INVALID_VALUE, /reserved/);
      // The session still works.
      await texCreate(c, 1, { type: 2, addr: plain, format: FLOAT, channels: 1, size: 256 });
    });
  });

  describe('on a backend without texture support', () => {
    let fx: Fixture;
    before(async () => { fx = await startFakeServer([{ type: 'T4', count: 1 }]); });
    after(() => fx.server.close());

    it('keeps arrays as memory and answers object creation with NOT_SUPPORTED', async () => {
      const c = await TestClient.session(fx.port);
      try {
        const addr = c.allocAddress(64);
        await arrayCreate(c, addr, 16, 0, 0);
        await fails(texCreate(c, 1, { type: 0, array: addr }), CUresult.CUDA_ERROR_NOT_SUPPORTED, /TEXOBJ_CREATE is not supported/);
      } finally {
        c.close();
      }
    });
  });
});
