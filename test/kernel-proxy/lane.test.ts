// The kernel-proxy's part in data lanes: it tells the intercept where to dial the pool (the address it
// reached the pool at; nothing over TLS), and still counts the bytes that travel on the lane, from the
// requests and replies that announce them.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pack, unpack } from 'msgpackr';
import { encodeMemcpyDtohLaneArgs, encodeMemcpyHtodLaneArgs, encodeMemAllocArgs, Flag, Op } from '../../gpu-runtime/protocol/generated/ops';
import { encodeFrame } from '../../gpu-runtime/protocol/ts/codec';
import { startServer, type RunningServer } from '../../gpu-runtime/server/src/main';
import { KernelProxy } from '../../kernel-proxy/src/proxy';
import { completeLaneOffer } from '../../kernel-proxy/src/laneAddress';
import { LaneSocket } from '../helpers/laneSocket';
import { TestClient } from './testClient';

const fixed16 = (enc: (b: Buffer, o: number, v: never) => number, v: object): Buffer => {
  const b = Buffer.alloc(16);
  enc(b, 0, v as never);
  return b;
};

describe('kernel-proxy and data lanes', function () {
  this.timeout(30000);
  let dir: string;
  let server: RunningServer;
  let proxy: KernelProxy;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-lane-'));
    server = await startServer({ port: 0, devices: 'emulated:T4' });
    proxy = await KernelProxy.start({ socket: path.join(dir, 's', 'proxy.sock'), pool: `tcp://127.0.0.1:${server.address.port}`, log: () => {}, pingIntervalMs: 0 });
  });
  after(async () => {
    await proxy?.stop();
    await server?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('names the address it reached the pool at, and counts the lane bytes both ways', async () => {
    const c = await TestClient.connect(proxy.socketPath);
    try {
      const { frame, value } = await c.hello();
      assert.equal(frame.result, 0);
      const lane = value.lane as { ticket: string; host: string; port: number };
      assert.equal(lane.host, '127.0.0.1');
      assert.equal(lane.port, server.address.port);
      assert.match(lane.ticket, /^[0-9a-f]{32}$/);
      assert.ok(Array.isArray((value.device as { attributes: unknown }).attributes), 'the rest of the reply is intact');
      const attached = await LaneSocket.attach(lane.port, value.session as string, lane.ticket, lane.host);
      assert.equal(attached.result, 0);

      const n = 1 << 20;
      const va = Number((value.va as { base: number | bigint }).base);
      const before = proxy.traffic.snapshot({ sessions: 1, gpuType: '' });
      const data = Buffer.alloc(n, 0x5a);
      c.sock.write(encodeFrame(Op.MEM_ALLOC, { seq: c.nextSeq(), flags: Flag.NO_REPLY, body: fixed16(encodeMemAllocArgs, { addr: va, size: n }) })[0]);
      c.sock.write(encodeFrame(Op.MEMCPY_HTOD_LANE, { seq: c.nextSeq(), flags: Flag.NO_REPLY, body: fixed16(encodeMemcpyHtodLaneArgs, { dst: va, size: n }) })[0]);
      attached.lane.sock.write(data);
      const seq = c.nextSeq();
      c.sock.write(encodeFrame(Op.MEMCPY_DTOH_LANE, { seq, body: fixed16(encodeMemcpyDtohLaneArgs, { src: va, size: n }) })[0]);
      const reply = await c.waitFor((f) => f.op === Op.MEMCPY_DTOH_LANE && f.seq === seq);
      assert.equal(reply.result, 0);
      assert.ok((await attached.lane.read(n)).equals(data));
      const after = proxy.traffic.snapshot({ sessions: 1, gpuType: '' });
      assert.ok(after.bytesToDevice - before.bytesToDevice >= n, 'bytes sent on the lane count towards the device');
      assert.ok(after.bytesFromDevice - before.bytesFromDevice >= n, 'bytes read on the lane count from the device');
      assert.ok(after.ops.MEMCPY_HTOD_LANE.bytes >= n && after.ops.MEMCPY_DTOH_LANE.bytes >= n, 'booked to the ops that announced them');
      assert.equal(proxy.status().sessions.find((s) => s.id === value.session)?.lane, true, 'the session shows its lane in rgpu/status');
      attached.lane.sock.destroy();
    } finally {
      c.sock.destroy();
    }
  });

  it('completes an offer without changing any other field, and withdraws it when there is no address', () => {
    const body = pack({ session: 's-9', device: { totalMem: 2n ** 34n + 5n, uuid: Buffer.alloc(16, 1) }, va: { base: 2n ** 40n, size: 2n ** 33n }, lane: { ticket: 'ab' } });
    const done = unpack(completeLaneOffer(body, { host: '10.0.0.2', port: 7447 })!) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.deepEqual(done.lane, { ticket: 'ab', host: '10.0.0.2', port: 7447 });
    assert.equal(BigInt(done.device.totalMem), 2n ** 34n + 5n);
    assert.equal(BigInt(done.va.base), 2n ** 40n);
    const tls = unpack(completeLaneOffer(body, null)!) as Record<string, unknown>;
    assert.equal(tls.lane, undefined, 'over TLS the offer is withdrawn');
    assert.equal(completeLaneOffer(pack({ session: 's-1' }), { host: 'h', port: 1 }), null, 'no offer: the reply passes as it is');
    const local = unpack(completeLaneOffer(body, { path: '/run/u/proxy.sock.pool-1-1' })!) as Record<string, unknown>;
    assert.deepEqual(local.lane, { ticket: 'ab', path: '/run/u/proxy.sock.pool-1-1' }, 'a pool on a Unix socket: the lane dials that path');
  });
});
