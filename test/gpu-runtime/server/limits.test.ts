// Connection limits and slow or oversized input before HELLO: a client over a limit is told why at HELLO and
// the server keeps serving everyone else.
import { strict as assert } from 'node:assert';
import { HEADER_SIZE, MAX_FRAME, Op } from '../../../gpu-runtime/protocol/generated/ops';
import { CUresult } from '../../../gpu-runtime/protocol/generated/cuResult';
import { writeHeader } from '../../../gpu-runtime/protocol/ts/codec';
import { parseServeArgs } from '../../../gpu-runtime/server/src/args';
import { startFakeServer, waitFor, type Fixture } from '../../helpers/serverFixture';
import { ReplyError, TestClient } from '../../helpers/testClient';

function header(length: number, op: number, bodyLen: number): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  writeHeader(b, 0, { length, op, bodyLen, seq: 3, flags: 0, stream: 0, result: 0 });
  return b;
}

async function refusedHello(port: number, host?: string): Promise<ReplyError> {
  const c = await TestClient.connect({ port, host });
  try {
    await c.sayHello();
  } catch (e) {
    assert.ok(e instanceof ReplyError, String(e));
    await c.closed; // the server closes after the refusal
    return e;
  }
  c.close();
  throw new Error('HELLO was accepted over the limit');
}

describe('server connection limits', () => {
  let fx: Fixture | undefined;
  afterEach(async () => {
    await fx?.server.close();
    fx = undefined;
  });

  it('answers a HELLO over --max-connections with DEVICE_UNAVAILABLE, closes it, and serves again once one leaves', async () => {
    fx = await startFakeServer([{ type: 'T4', count: 4 }], { maxConnections: 2, mode: 'shared' });
    const a = await TestClient.session(fx.port);
    const b = await TestClient.session(fx.port);
    const e = await refusedHello(fx.port);
    assert.equal(e.result, CUresult.CUDA_ERROR_DEVICE_UNAVAILABLE);
    assert.match(e.serverMessage, /limit of 2 connections/);
    assert.equal(fx.server.counters.refused, 1);
    await a.sync(); // the served ones are untouched
    await b.sync();
    a.close();
    await waitFor(() => fx!.server.clients.size === 1, 2000, 'a closed');
    const c = await TestClient.session(fx.port);
    await c.sync();
    c.close();
    b.close();
  });

  it('limits connections per remote address', async () => {
    fx = await startFakeServer([{ type: 'T4', count: 4 }], { maxConnectionsPerAddress: 1, mode: 'shared' });
    const a = await TestClient.session(fx.port);
    const e = await refusedHello(fx.port);
    assert.equal(e.result, CUresult.CUDA_ERROR_DEVICE_UNAVAILABLE);
    assert.match(e.serverMessage, /127\.0\.0\.1 already has 1 connections/);
    a.close();
    await waitFor(() => fx!.server.clients.size === 0, 2000, 'a closed');
    const b = await TestClient.session(fx.port); // the address's count went down with the close
    await b.sync();
    b.close();
  });

  it('drops a refused connection that never says HELLO within a few seconds, even with a long HELLO timeout', async function () {
    this.timeout(15000);
    fx = await startFakeServer([{ type: 'T4', count: 1 }], { maxConnections: 1, helloTimeoutMs: 60000 });
    const a = await TestClient.session(fx.port);
    const idle = await TestClient.connect({ port: fx.port });
    const t0 = Date.now();
    await idle.closed;
    const ms = Date.now() - t0;
    assert.ok(ms >= 4000 && ms < 8000, `closed after ${ms} ms`);
    await a.sync();
    a.close();
  });

  it('closes a connection that piles up a partial frame before HELLO (slowloris with a huge claimed length)', async () => {
    fx = await startFakeServer([{ type: 'T4', count: 1 }]);
    const c = await TestClient.connect({ port: fx.port });
    // A header claiming the largest legal frame, then bytes that never complete it.
    c.writeRaw(header(MAX_FRAME, Op.HELLO, 100));
    for (let i = 0; i < 5; i++) c.writeRaw(Buffer.alloc(32 * 1024));
    await c.closed;
    const s = await TestClient.session(fx.port);
    await s.sync();
    s.close();
  });

  it('keeps a slow but small HELLO (below the pre-HELLO cap) and serves it', async () => {
    fx = await startFakeServer([{ type: 'T4', count: 1 }]);
    const c = await TestClient.connect({ port: fx.port });
    c.writeRaw(header(5000, Op.HELLO, 5000)); // never completed: only the HELLO timeout applies
    c.writeRaw(Buffer.alloc(4000));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(fx.server.clients.size, 1, 'still connected');
    c.close();
  });

  it('parses --max-connections, --max-connections-per-address and --cuda-in-process', () => {
    const a = parseServeArgs(['--max-connections', '10', '--max-connections-per-address', '3', '--cuda-in-process']);
    assert.equal(a.maxConnections, 10);
    assert.equal(a.maxConnectionsPerAddress, 3);
    assert.equal(a.cudaInProcess, true);
    assert.equal(parseServeArgs([]).cudaInProcess, false);
    assert.throws(() => parseServeArgs(['--max-connections', '0']), /positive integer/);
    assert.throws(() => parseServeArgs(['--max-connections', '1e3']), /positive integer/);
  });
});

describe('server: stalled partial frames', () => {
  it('closes a session whose partial frame makes no progress, and keeps one that trickles', async function () {
    this.timeout(10000);
    const fx = await startFakeServer([{ type: 'T4', count: 2 }], { partialFrameTimeoutMs: 400 });
    try {
      const stalled = await TestClient.session(fx.port);
      const trickling = await TestClient.session(fx.port);
      for (const c of [stalled, trickling]) c.writeRaw([header(100_000, Op.MEMCPY_HTOD, 8), Buffer.alloc(5000)]);
      const t0 = Date.now();
      let closedAt = 0;
      void stalled.closed.then(() => (closedAt = Date.now()));
      while (Date.now() - t0 < 1500) {
        trickling.writeRaw(Buffer.alloc(100)); // progress, however slow
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(closedAt > 0, 'the stalled session was closed');
      assert.ok(closedAt - t0 >= 300, `closed after ${closedAt - t0} ms, before the timeout`);
      assert.equal(fx.server.clients.size, 1, 'the trickling session is still served');
      trickling.close();
    } finally {
      await fx.server.close();
    }
  });
});
