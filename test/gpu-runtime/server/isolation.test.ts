import { strict as assert } from 'node:assert';
import { encodeMemcpyHtodArgs, encodeMemFreeArgs, HEADER_SIZE, Op } from '../../../gpu-runtime/protocol/generated/ops';
import { CUresult } from '../../../gpu-runtime/protocol/generated/cuResult';
import { writeHeader } from '../../../gpu-runtime/protocol/ts/codec';
import { startFakeServer, waitFor, type Fixture } from '../../helpers/serverFixture';
import { ReplyError, TestClient } from '../../helpers/testClient';

const MODULE = Buffer.from('.visible .entry fill_u32(.param .u64 p, .param .u32 v, .param .u32 n) { ret; }');

async function code(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (e) {
    assert.ok(e instanceof ReplyError, String(e));
    return e.result;
  }
}

describe('server isolation and cleanup', () => {
  let fx: Fixture;
  beforeEach(async () => {
    fx = await startFakeServer([{ type: 'T4', count: 2 }], { mode: 'shared' });
  });
  afterEach(() => fx.server.close());

  it('session B can neither read, write, free nor name what session A owns', async () => {
    const a = await TestClient.session(fx.port);
    const b = await TestClient.session(fx.port);
    // Shared mode: both on different devices or the same one; the checks must hold either way.
    const secret = Buffer.from('the secret of session A, 32 byte');
    const pa = a.alloc(secret.length);
    a.htod(pa, secret);
    const sa = a.createStream();
    const ea = a.createEvent();
    const { module: ma } = await a.loadModule(MODULE);
    await a.sync();

    assert.equal(await code(b.dtoh(pa, secret.length)), CUresult.CUDA_ERROR_INVALID_VALUE);
    const free = Buffer.alloc(8);
    encodeMemFreeArgs(free, 0, { addr: pa });
    assert.equal(await code(b.request(Op.MEM_FREE, { body: free })), CUresult.CUDA_ERROR_INVALID_VALUE);
    const htod = Buffer.alloc(8);
    encodeMemcpyHtodArgs(htod, 0, { dst: pa });
    assert.equal(await code(b.request(Op.MEMCPY_HTOD, { body: htod, bulk: Buffer.alloc(4) })), CUresult.CUDA_ERROR_INVALID_VALUE);
    assert.equal(await code(b.allocAt(pa, 64)), CUresult.CUDA_ERROR_INVALID_VALUE, 'A address is outside B window');
    assert.equal(await code(b.streamSync(sa)), CUresult.CUDA_ERROR_INVALID_HANDLE);
    assert.equal(await code(b.eventSync(ea)), CUresult.CUDA_ERROR_INVALID_HANDLE);
    const launch = Buffer.alloc(40);
    launch.writeUInt32LE(ma, 0);
    for (let o = 8; o < 32; o += 4) launch.writeUInt32LE(1, o);
    assert.equal(await code(b.request(Op.LAUNCH, { body: launch, bulk: Buffer.alloc(16) })), CUresult.CUDA_ERROR_INVALID_HANDLE);

    // A is untouched, and B's own work is fine.
    assert.deepEqual(await a.dtoh(pa, secret.length), secret);
    const pb = b.alloc(8);
    b.htod(pb, Buffer.from('B-bytes!'));
    assert.equal((await b.dtoh(pb, 8)).toString(), 'B-bytes!');
    a.close();
    b.close();
  });

  it('frees everything when a session disconnects and gives its device to the next in the queue', async () => {
    await fx.server.close();
    fx = await startFakeServer([{ type: 'T4', count: 1 }]);
    const dev = fx.backend.devices[0];
    const a = await TestClient.session(fx.port);
    a.alloc(1 << 20);
    a.alloc(1 << 16);
    await a.sync();
    assert.equal(dev.memUsed(), (1 << 20) + (1 << 16));
    const b = await TestClient.connect({ port: fx.port });
    const hello = b.sayHello({});
    await waitFor(() => b.queued.length === 1);
    a.socket.destroy(); // no GOODBYE: the connection just dies
    await hello;
    assert.equal(dev.memUsed(), 0);
    assert.equal(dev.contexts.size, 1, 'only B has a context');
    b.close();
    await waitFor(() => dev.contexts.size === 0, 2000, 'B context freed');
  });

  it('a client killed half-way through a large HTOD frame leaves other sessions working', async () => {
    const dev = () => fx.backend.devices.reduce((n, d) => n + d.memUsed(), 0);
    const a = await TestClient.session(fx.port);
    const b = await TestClient.session(fx.port);
    const size = 8 << 20;
    const pa = a.alloc(size);
    await a.sync();
    // One HTOD frame of 8 MiB of which only 3 MiB ever arrive.
    const head = Buffer.alloc(HEADER_SIZE + 8);
    writeHeader(head, 0, { length: 8 + size, op: Op.MEMCPY_HTOD, flags: 1, seq: 99, stream: 0, bodyLen: 8, result: 0 });
    encodeMemcpyHtodArgs(head, HEADER_SIZE, { dst: pa });
    a.writeRaw(head);
    const chunk = Buffer.alloc(1 << 20, 0xab);
    for (let i = 0; i < 3; i++) a.writeRaw(chunk);

    const pb = b.alloc(4096);
    const work = (async () => {
      for (let i = 0; i < 20; i++) {
        const data = Buffer.alloc(4096, i);
        b.htod(pb, data);
        assert.deepEqual(await b.dtoh(pb, 4096), data);
      }
    })();
    await new Promise((r) => setTimeout(r, 20));
    a.socket.destroy();
    await work;
    await waitFor(() => dev() === 4096, 2000, "A's memory freed");
    const inv = fx.server.pool.inventory();
    assert.equal(inv.sessions, 1);
    b.close();
  });
});
