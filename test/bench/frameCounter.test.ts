import * as assert from 'node:assert/strict';
import { AddressInfo, createConnection, createServer, Server, Socket } from 'node:net';
import { FrameCounter } from '../../bench/src/frameCounter';
import { Flag, Op } from '../../gpu-runtime/protocol/generated/ops';

function frame(op: number, flags: number, seq: number, bulk = 0): Buffer {
  const b = Buffer.alloc(24 + bulk);
  b.writeUInt32LE(bulk, 0);
  b.writeUInt16LE(op, 4);
  b.writeUInt16LE(flags, 6);
  b.writeUInt32LE(seq, 8);
  return b;
}

/** A fake server that answers every request expecting a reply, with an empty REPLY frame. */
function fakeServer(): Promise<Server> {
  const server = createServer((s) => {
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 24 && buf.length >= 24 + buf.readUInt32LE(0)) {
        const len = 24 + buf.readUInt32LE(0);
        const op = buf.readUInt16LE(4);
        const flags = buf.readUInt16LE(6);
        if (!(flags & Flag.NO_REPLY)) s.write(frame(op, Flag.REPLY, buf.readUInt32LE(8)));
        buf = buf.subarray(len);
      }
    });
  });
  return new Promise((res) => server.listen(0, '127.0.0.1', () => res(server)));
}

function readFrames(s: Socket, n: number): Promise<void> {
  return new Promise((res) => {
    let got = 0;
    const on = (d: Buffer): void => {
      got += d.length / 24;
      if (got >= n) {
        s.off('data', on);
        res();
      }
    };
    s.on('data', on);
  });
}

describe('bench FrameCounter', () => {
  let server: Server;
  let counter: FrameCounter;
  let port: number;
  before(async () => {
    server = await fakeServer();
    counter = new FrameCounter({ host: '127.0.0.1', port: (server.address() as AddressInfo).port });
    port = (await counter.listen()).port;
  });
  after(async () => {
    await counter.close();
    server.close();
  });

  it('counts pipelined requests as one round trip and ignores fire-and-forget frames', async () => {
    const c = createConnection(port, '127.0.0.1');
    await new Promise((res) => c.once('connect', res));
    // 3 launches (no reply, one with 16 bytes of bulk split across writes), then 2 pipelined requests.
    const launch = frame(Op.LAUNCH, Flag.NO_REPLY, 1, 16);
    c.write(Buffer.concat([frame(Op.LAUNCH, Flag.NO_REPLY, 0), launch.subarray(0, 30)]));
    c.write(Buffer.concat([launch.subarray(30), frame(Op.LAUNCH, Flag.NO_REPLY, 2)]));
    const replies = readFrames(c, 2);
    c.write(Buffer.concat([frame(Op.MEMCPY_DTOH, 0, 3, 16), frame(Op.STREAM_SYNC, 0, 4)]));
    await replies;
    const last = readFrames(c, 1);
    c.write(frame(Op.CTX_SYNC, 0, 5));
    await last;
    c.destroy();
    const t = counter.sessionTotals();
    assert.equal(t.replyRequests, 3);
    assert.equal(t.roundTrips, 2);
    assert.equal(t.ops.LAUNCH, 3);
    assert.equal(t.ops.STREAM_SYNC, 1);
  });

  it('does not split a round trip when a reply comes back before the client\'s next request', async () => {
    counter.reset();
    const c = createConnection(port, '127.0.0.1');
    await new Promise((res) => c.once('connect', res));
    const replies = readFrames(c, 2);
    // DtoH, then the sync 5 ms later without reading anything: the server has answered the DtoH by then,
    // but the client never waited for it, so both requests are one round trip.
    c.write(Buffer.concat([frame(Op.LAUNCH, Flag.NO_REPLY, 0), frame(Op.MEMCPY_DTOH, 0, 1, 16)]));
    await new Promise((res) => setTimeout(res, 5));
    c.write(frame(Op.STREAM_SYNC, 0, 2));
    await replies;
    c.destroy();
    const t = counter.sessionTotals();
    assert.equal(t.replyRequests, 2);
    assert.equal(t.roundTrips, 1);
  });

  it('leaves connections that never launch (a proxy\'s control connection) out of the session totals', async () => {
    counter.reset();
    const c = createConnection(port, '127.0.0.1');
    await new Promise((res) => c.once('connect', res));
    const reply = readFrames(c, 1);
    c.write(frame(Op.INVENTORY, 0, 1));
    await reply;
    c.destroy();
    assert.equal(counter.sessionTotals().replyRequests, 0);
    assert.equal(counter.sessionTotals().roundTrips, 0);
  });
});
