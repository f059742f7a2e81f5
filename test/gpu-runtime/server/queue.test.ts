import { strict as assert } from 'node:assert';
import { CUresult } from '../../../gpu-runtime/protocol/generated/cuResult';
import { Pool } from '../../../gpu-runtime/server/src/pool';
import { CudaError } from '../../../gpu-runtime/server/src/backend';
import { FakeBackend } from '../../helpers/fakeBackend';
import { startFakeServer, waitFor, type Fixture } from '../../helpers/serverFixture';
import { TestClient } from '../../helpers/testClient';

describe('server pool and queue', () => {
  let fx: Fixture;
  beforeEach(async () => {
    fx = await startFakeServer([{ type: 'T4', count: 1 }, { type: 'L4', count: 1 }]);
  });
  afterEach(() => fx.server.close());

  it('queues sessions of a busy type with positions, moves the queue on release and leaving', async () => {
    const a = await TestClient.session(fx.port, { gpuType: 'T4' });
    const b = await TestClient.connect({ port: fx.port });
    const c = await TestClient.connect({ port: fx.port });
    const d = await TestClient.connect({ port: fx.port });
    const bHello = b.sayHello({ gpuType: 'T4' });
    await waitFor(() => b.queued.length === 1, 2000, 'B queued');
    const cHello = c.sayHello({ gpuType: 'T4' }).catch((e: Error) => e);
    await waitFor(() => c.queued.length === 1, 2000, 'C queued');
    d.sayHello({ gpuType: 'T4' }).catch(() => {});
    await waitFor(() => d.queued.length === 1, 2000, 'D queued');
    assert.deepEqual(b.queued, [{ position: 1, type: 'T4' }]);
    assert.deepEqual(c.queued, [{ position: 2, type: 'T4' }]);
    assert.deepEqual(d.queued, [{ position: 3, type: 'T4' }]);

    // The other type is not held up by the T4 queue.
    const l4 = await TestClient.session(fx.port, { gpuType: 'L4' });
    assert.equal(l4.hello!.device.type, 'L4');

    const ctl = await TestClient.connect({ port: fx.port });
    await ctl.sayHello({ purpose: 'control' });
    const inv = await ctl.inventory();
    const t4 = inv.types.find((t: { type: string }) => t.type === 'T4');
    assert.deepEqual({ total: t4.total, free: t4.free, sessions: t4.sessions, queued: t4.queued }, { total: 1, free: 0, sessions: 1, queued: 3 });
    assert.equal(inv.queued, 3);
    assert.equal(inv.sessions, 2);
    const t4dev = inv.devices.find((d: { type: string }) => d.type === 'T4');
    assert.deepEqual(t4dev.sessions, [a.hello!.session]);
    assert.equal(t4dev.clients[0].session, a.hello!.session);
    assert.equal(t4dev.clients[0].pid, process.pid);
    assert.equal(t4dev.clients[0].argv0, 'testClient');

    // C leaves the queue: D moves up to 2.
    c.close();
    await waitFor(() => d.queued.length === 2, 2000, 'D moves up');
    assert.deepEqual(d.queued[1], { position: 2, type: 'T4' });
    assert.ok((await cHello) instanceof Error, 'C left before it got a device');

    // A ends: B gets the device, D is first.
    a.goodbye();
    const hb = await bHello;
    assert.equal(hb.device.type, 'T4');
    await waitFor(() => d.queued.length === 3, 2000, 'D first');
    assert.deepEqual(d.queued[2], { position: 1, type: 'T4' });
    const inv2 = await ctl.inventory();
    assert.equal(inv2.types.find((t: { type: string }) => t.type === 'T4').queued, 1);
    for (const x of [b, d, l4, ctl]) x.close();
  });

  it('a client that sends work while queued has it run once it gets the device', async () => {
    const a = await TestClient.session(fx.port, { gpuType: 'T4' });
    const b = await TestClient.connect({ port: fx.port });
    const hello = b.sayHello({ gpuType: 'T4' });
    await waitFor(() => b.queued.length === 1);
    const sync = b.sync();
    a.close();
    await hello;
    await sync;
    b.close();
  });
});

describe('Pool', () => {
  const devices = new FakeBackend([{ type: 'T4', count: 2 }]).devices;

  it('shared mode spreads sessions over the least-loaded device and never queues', async () => {
    const pool = new Pool(devices, 'shared');
    const queued: number[] = [];
    const leases = await Promise.all(['a', 'b', 'c', 'd'].map((id) => pool.acquire(id, 'T4', (p) => queued.push(p)).promise));
    assert.deepEqual(queued, []);
    assert.deepEqual(leases.map((l) => l.device.index), [0, 1, 0, 1]);
    for (const l of leases) pool.release(l);
    assert.equal(pool.sessionCount, 0);
  });

  it('exclusive mode: unknown type is NO_DEVICE; releasing twice is harmless', async () => {
    const pool = new Pool(devices, 'exclusive');
    await assert.rejects(pool.acquire('x', 'V100', () => {}).promise, (e: unknown) => e instanceof CudaError && e.code === CUresult.CUDA_ERROR_NO_DEVICE);
    const l = await pool.acquire('a', '', () => {}).promise;
    pool.release(l);
    pool.release(l);
    assert.equal(pool.inventory().types[0].free, 2);
  });
});
