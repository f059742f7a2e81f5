// Data lanes (LANE_ATTACH): a session's second connection carrying only the payloads of large copies. The
// bytes on it must keep exact stream order with the session's frames, be taken off the lane even when the
// copy they belong to fails, and a lane must be attachable once, by its own session only.
import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CUresult } from '../../../gpu-runtime/server/src/backend';
import { startServer, type RunningServer } from '../../../gpu-runtime/server/src/main';
import { encodeMemcpyDtoh2dLaneArgs, encodeMemcpyHtod2dLaneArgs, Op } from '../../../gpu-runtime/protocol/generated/ops';
import { LaneSocket } from '../../helpers/laneSocket';
import { ReplyError, TestClient } from '../../helpers/testClient';

const MiB = 2 ** 20;
const pattern = (n: number, seed: number): Buffer => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed) & 0xff;
  return b;
};

describe('server data lanes', function () {
  this.timeout(30000);
  let server: RunningServer;

  before(async function () {
    if (!existsSync(join(__dirname, '../../../gpu-runtime/emulator/src/index.js'))) this.skip();
    server = await startServer({ port: 0, devices: 'emulated:T4x2' });
  });
  after(async () => {
    await server?.close();
  });

  const session = async (): Promise<{ c: TestClient; lane: LaneSocket }> => {
    const c = await TestClient.session(server.address.port);
    const offer = c.hello!.lane!;
    assert.match(offer.ticket, /^[0-9a-f]{32}$/);
    assert.equal(offer.host, undefined, 'the server names no address: only a proxy knows the one to dial');
    assert.equal(offer.skipsServer, undefined, 'an emulated context runs in the server: a direct client gains nothing from a lane');
    const { lane, result } = await LaneSocket.attach(server.address.port, c.hello!.session, offer.ticket);
    assert.equal(result, 0);
    return { c, lane };
  };

  it('attaches a lane once, to its own session only', async () => {
    const a = await TestClient.session(server.address.port);
    const b = await TestClient.session(server.address.port);
    try {
      const wrong = await LaneSocket.attach(server.address.port, a.hello!.session, '00'.repeat(16));
      assert.equal(wrong.result, CUresult.CUDA_ERROR_NOT_PERMITTED);
      await wrong.lane.closed;
      const crossed = await LaneSocket.attach(server.address.port, a.hello!.session, b.hello!.lane!.ticket);
      assert.equal(crossed.result, CUresult.CUDA_ERROR_NOT_PERMITTED, "another session's ticket");
      const ok = await LaneSocket.attach(server.address.port, a.hello!.session, a.hello!.lane!.ticket);
      assert.equal(ok.result, 0);
      const again = await LaneSocket.attach(server.address.port, a.hello!.session, a.hello!.lane!.ticket);
      assert.equal(again.result, CUresult.CUDA_ERROR_NOT_PERMITTED, 'a ticket attaches once');
      ok.lane.sock.destroy();
    } finally {
      a.close();
      b.close();
    }
  });

  it('moves bytes both ways in stream order with the frames around them, also when they arrive early', async () => {
    const { c, lane } = await session();
    try {
      const n = MiB + 13 * 256;
      const a = c.alloc(2 * n);
      const p1 = pattern(n, 1);
      c.htodLane(a, n);
      lane.sock.write(p1);
      c.memset(a, 0xee, 1, 16); // after the lane copy in stream order
      // The lane's bytes first and their frame later: the server must keep them for it.
      const p2 = pattern(n, 2);
      lane.sock.write(p2);
      await new Promise((r) => setTimeout(r, 50));
      c.htodLane(a + n, n);
      const r = await c.dtohLane(a, 2 * n);
      assert.equal(r.result, 0);
      assert.equal(r.body.readBigUInt64LE(0), BigInt(2 * n), 'the reply says how many bytes follow on the lane');
      const got = await lane.read(2 * n);
      assert.ok(got.subarray(0, 16).every((x) => x === 0xee), 'the memset ran after the lane copy');
      assert.ok(got.subarray(16, n).equals(p1.subarray(16)));
      assert.ok(got.subarray(n).equals(p2));
      const stats = await c.stats();
      assert.ok(stats.bytesIn >= 2 * n && stats.bytesOut >= 2 * n, 'lane bytes count as the session traffic');
    } finally {
      c.close();
    }
  });

  it('2D copies: packed rows on the lane land at their pitch and come back packed', async () => {
    const { c, lane } = await session();
    try {
      const w = 1000, h = 300, pitch = 1024;
      const a = c.alloc(pitch * h);
      c.memset(a, 0x11, 1, pitch * h);
      const rows = pattern(w * h, 7);
      const body = Buffer.alloc(32);
      encodeMemcpyHtod2dLaneArgs(body, 0, { dst: a, dpitch: pitch, width: w, height: h });
      c.post(Op.MEMCPY_HTOD_2D_LANE, { body });
      lane.sock.write(rows);
      const flat = await c.dtoh(a, pitch * h);
      for (let r = 0; r < h; r++) {
        assert.ok(flat.subarray(r * pitch, r * pitch + w).equals(rows.subarray(r * w, (r + 1) * w)), `row ${r}`);
        assert.ok(flat.subarray(r * pitch + w, (r + 1) * pitch).every((x) => x === 0x11), `the gap after row ${r} is untouched`);
      }
      encodeMemcpyDtoh2dLaneArgs(body, 0, { src: a, spitch: pitch, width: w, height: h });
      const reply = await c.requestRaw(Op.MEMCPY_DTOH_2D_LANE, { body });
      assert.equal(reply.result, 0);
      assert.equal(reply.body.readBigUInt64LE(0), BigInt(w * h));
      assert.ok((await lane.read(w * h)).equals(rows));
    } finally {
      c.close();
    }
  });

  it('takes the bytes of a refused copy off the lane, and sends none for a refused read', async () => {
    const { c, lane } = await session();
    try {
      const n = 512 * 1024;
      const a = c.alloc(n);
      c.htodLane(a + n / 2, n); // runs past the allocation: refused, its bytes still taken
      lane.sock.write(pattern(n, 3));
      await assert.rejects(c.sync(), (e: unknown) => e instanceof ReplyError && e.result === CUresult.CUDA_ERROR_INVALID_VALUE);
      const bad = await c.dtohLane(a, 2 * n);
      assert.equal(bad.result, CUresult.CUDA_ERROR_INVALID_VALUE);
      const p = pattern(n, 4);
      c.htodLane(a, n);
      lane.sock.write(p);
      const r = await c.dtohLane(a, n);
      assert.equal(r.result, 0);
      assert.ok((await lane.read(n)).equals(p), 'the next copy is whole and in place');
      assert.equal(lane.buffered, 0, 'the refused read sent nothing');
    } finally {
      c.close();
    }
  });

  it('a client killed halfway through a lane copy costs only its own session', async () => {
    const { c, lane } = await session();
    const other = await session();
    c.htodLane(c.alloc(4 * MiB), 4 * MiB);
    lane.sock.write(pattern(MiB, 5)); // a quarter of it, then the process dies
    await new Promise((r) => setTimeout(r, 30));
    lane.sock.destroy();
    c.close();
    await c.closed;
    const a = other.c.alloc(MiB);
    const p = pattern(MiB, 6);
    other.c.htodLane(a, MiB);
    other.lane.sock.write(p);
    assert.equal((await other.c.dtohLane(a, MiB)).result, 0);
    assert.ok((await other.lane.read(MiB)).equals(p), 'the other session goes on');
    other.c.close();
  });

  it('ends the session with its lane; a session without one may not use lane ops', async () => {
    const { c, lane } = await session();
    lane.sock.destroy();
    await c.closed;
    const d = await TestClient.session(server.address.port);
    const r = await d.dtohLane(d.alloc(MiB), MiB);
    assert.equal(r.result, CUresult.CUDA_ERROR_INVALID_VALUE, 'no lane: a clear error, nothing sent');
    d.htodLane(d.alloc(MiB), MiB); // its bytes could not be told apart from anything: the session ends
    await d.closed;
  });
});
