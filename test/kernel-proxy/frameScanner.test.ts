import * as assert from 'node:assert/strict';
import { Flag, HEADER_SIZE, Op } from '../../gpu-runtime/protocol/generated/ops';
import { encodeFrame, packValue, ProtocolError } from '../../gpu-runtime/protocol/ts/codec';
import { FrameScanner } from '../../kernel-proxy/src/frameScanner';
import { pattern } from './fakePool';

interface Seen {
  op: number;
  flags: number;
  seq: number;
  length: number;
  bodyLen: number;
  result: number;
}

function collector(wantBody: (op: number) => boolean) {
  const headers: Seen[] = [];
  const bodies: Array<{ op: number; seq: number; body: Buffer }> = [];
  const scanner = new FrameScanner({
    onHeader: (op, flags, seq, length, bodyLen, result) => {
      headers.push({ op, flags, seq, length, bodyLen, result });
      return wantBody(op);
    },
    onBody: (op, _f, seq, _r, body) => bodies.push({ op, seq, body: Buffer.from(body) }),
  });
  return { scanner, headers, bodies };
}

function stream(): { bytes: Buffer; expect: Seen[]; queuedBody: Buffer } {
  const queuedBody = packValue([3, 'A100-40GB']);
  const frames = [
    encodeFrame(Op.LAUNCH, { flags: Flag.NO_REPLY, seq: 1, stream: 2, body: Buffer.alloc(40, 1), bulk: Buffer.alloc(28, 2) }),
    encodeFrame(Op.QUEUED, { flags: Flag.NOTIFY, seq: 0, body: queuedBody }),
    encodeFrame(Op.MEMCPY_HTOD, { flags: Flag.NO_REPLY, seq: 2, body: Buffer.alloc(8), bulk: pattern(70000) }),
    encodeFrame(Op.CTX_SYNC, { seq: 3 }),
    encodeFrame(Op.EVENT_QUERY, { flags: Flag.REPLY, seq: 4, result: 600 }),
  ];
  const expect: Seen[] = [
    { op: Op.LAUNCH, flags: Flag.NO_REPLY, seq: 1, length: 68, bodyLen: 40, result: 0 },
    { op: Op.QUEUED, flags: Flag.NOTIFY, seq: 0, length: queuedBody.length, bodyLen: queuedBody.length, result: 0 },
    { op: Op.MEMCPY_HTOD, flags: Flag.NO_REPLY, seq: 2, length: 70008, bodyLen: 8, result: 0 },
    { op: Op.CTX_SYNC, flags: 0, seq: 3, length: 0, bodyLen: 0, result: 0 },
    { op: Op.EVENT_QUERY, flags: Flag.REPLY, seq: 4, length: 0, bodyLen: 0, result: 600 },
  ];
  return { bytes: Buffer.concat(frames.flat()), expect, queuedBody };
}

describe('kernel-proxy FrameScanner', () => {
  it('finds every header in one chunk and captures only the bodies asked for', () => {
    const { bytes, expect, queuedBody } = stream();
    const c = collector((op) => op === Op.QUEUED);
    c.scanner.scan(bytes);
    assert.deepEqual(c.headers, expect);
    assert.equal(c.bodies.length, 1);
    assert.deepEqual(c.bodies[0].body, queuedBody);
    assert.ok(c.scanner.atBoundary);
  });

  it('gives the same result for every way of splitting the stream (byte by byte, random, header-straddling)', () => {
    const { bytes, expect, queuedBody } = stream();
    const splits: number[][] = [[1], [3, 5, 7], [HEADER_SIZE - 1], [HEADER_SIZE + 1, 13], [4096, 17]];
    for (const sizes of splits) {
      const c = collector((op) => op === Op.QUEUED);
      let o = 0;
      let i = 0;
      while (o < bytes.length) {
        const n = sizes[i++ % sizes.length];
        c.scanner.scan(bytes.subarray(o, o + n));
        o += n;
      }
      assert.deepEqual(c.headers, expect, `split ${sizes}`);
      assert.deepEqual(c.bodies.map((b) => b.body), [queuedBody], `split ${sizes}`);
      assert.ok(c.scanner.atBoundary);
    }
  });

  it('reports a partial frame as not at a boundary', () => {
    const c = collector(() => false);
    c.scanner.scan(encodeFrame(Op.LAUNCH, { body: Buffer.alloc(40) })[0].subarray(0, 30));
    assert.equal(c.headers.length, 1);
    assert.equal(c.scanner.atBoundary, false);
  });

  it('throws a ProtocolError with a stable code on a frame over the limit or a body longer than the frame', () => {
    const big = Buffer.alloc(HEADER_SIZE);
    big.writeUInt32LE(0xffffffff, 0);
    assert.throws(() => collector(() => false).scanner.scan(big), (e: unknown) => e instanceof ProtocolError && e.code === 'RGPU_ERR_FRAME_TOO_LARGE');
    const bad = Buffer.alloc(HEADER_SIZE);
    bad.writeUInt32LE(4, 0);
    bad.writeUInt32LE(8, 16);
    assert.throws(() => collector(() => false).scanner.scan(bad), (e: unknown) => e instanceof ProtocolError && e.code === 'RGPU_ERR_BAD_HEADER');
  });
});
