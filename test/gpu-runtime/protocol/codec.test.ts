import { strict as assert } from 'node:assert';
import { HEADER_SIZE, MAX_BODY, MAX_FRAME, Op, OPS } from '../../../gpu-runtime/protocol/generated/ops';
import { checkHeader, encodeFrame, FrameDecoder, packArgs, PLACE_MIN, ProtocolError, readHeader, unpackArgs, writeHeader, type Frame } from '../../../gpu-runtime/protocol/ts/codec';
import { readU64, writeU64 } from '../../../gpu-runtime/protocol/ts/u64';

describe('protocol codec', () => {
  it('writes the 24-byte little-endian header of ops.yaml', () => {
    const [head, bulk] = encodeFrame(Op.MEMCPY_HTOD, { flags: 1, seq: 0x01020304, stream: 7, result: -5, body: Buffer.from([9, 9, 9, 9, 9, 9, 9, 9]), bulk: Buffer.from('xyz') });
    assert.equal(head.length, HEADER_SIZE + 8);
    assert.equal(bulk.toString(), 'xyz');
    assert.equal(head.toString('hex', 0, 24), '0b000000' + '2200' + '0100' + '04030201' + '07000000' + '08000000' + 'fbffffff');
    assert.deepEqual(readHeader(head), { length: 11, op: Op.MEMCPY_HTOD, flags: 1, seq: 0x01020304, stream: 7, bodyLen: 8, result: -5 });
  });

  it('decodes frames split at every byte boundary and returns views for unsplit frames', () => {
    const a = Buffer.concat(encodeFrame(Op.PING, { seq: 1, body: Buffer.alloc(8, 1) }));
    const b = Buffer.concat(encodeFrame(Op.MEMCPY_HTOD, { seq: 2, body: Buffer.alloc(8, 2), bulk: Buffer.alloc(100, 3) }));
    const all = Buffer.concat([a, b]);
    for (let cut = 0; cut <= all.length; cut++) {
      const d = new FrameDecoder();
      const frames = [...d.push(all.subarray(0, cut)), ...d.push(all.subarray(cut))];
      assert.deepEqual(frames.map((f) => [f.seq, f.body.length, f.bulk.length]), [[1, 8, 0], [2, 8, 100]], `cut at ${cut}`);
      assert.ok(frames[1].bulk.every((x) => x === 3));
    }
    const d = new FrameDecoder();
    const [f] = d.push(all);
    assert.equal(f.body.buffer, all.buffer, 'a frame inside one chunk is a view, not a copy');
  });

  it('places a large bulk straight into the placer\'s target, after every earlier frame was handled', () => {
    // Larger than every read step below, so that the frame straddles reads (a frame whole in one chunk given
    // to feed() is a view of it, not placed; feedTransient places those too, see userBufferReads.test.ts).
    const n = Math.max(PLACE_MIN, 1 << 16) + 1001;
    const bulk = Buffer.alloc(n);
    for (let i = 0; i < n; i++) bulk[i] = (i * 7) & 0xff;
    const before = Buffer.concat(encodeFrame(Op.PING, { seq: 1, body: Buffer.alloc(8, 1) }));
    const big = Buffer.concat(encodeFrame(Op.MEMCPY_HTOD, { seq: 2, body: Buffer.alloc(8, 2), bulk }));
    const after = Buffer.concat(encodeFrame(Op.PING, { seq: 3, body: Buffer.alloc(8, 3) }));
    const all = Buffer.concat([before, big, after]);
    for (const step of [1 << 16, 4093, 70]) {
      const target = Buffer.alloc(n);
      const seen: number[] = [];
      let asked = 0;
      const d = new FrameDecoder(undefined, (h, body) => {
        asked++;
        assert.deepEqual(seen, [1], 'the frame before was delivered first');
        assert.equal(h.seq, 2);
        assert.ok(body.equals(Buffer.alloc(8, 2)));
        return target;
      });
      const frames: Frame[] = [];
      for (let o = 0; o < all.length; o += step) d.feed(all.subarray(o, o + step), (f) => { seen.push(f.seq); frames.push(f); });
      assert.deepEqual(seen, [1, 2, 3], `step ${step}`);
      assert.equal(asked, 1, 'asked once per frame');
      assert.equal(frames[1].placed, true);
      assert.equal(frames[1].bulk, target);
      assert.ok(frames[1].body.equals(Buffer.alloc(8, 2)));
      assert.ok(target.equals(bulk), `step ${step}: placed bytes`);
      assert.ok(frames[2].body.equals(Buffer.alloc(8, 3)));
      assert.equal(d.pendingBytes, 0);
    }
    // Refused (or wrong-sized) targets fall back to assembly, asked once.
    let asked = 0;
    const d = new FrameDecoder(undefined, () => (asked++, Buffer.alloc(5)));
    const frames: Frame[] = [];
    for (let o = 0; o < all.length; o += 4096) frames.push(...d.push(all.subarray(o, o + 4096)));
    assert.equal(asked, 1);
    assert.deepEqual(frames.map((f) => [f.seq, f.placed]), [[1, false], [2, false], [3, false]]);
    assert.ok(frames[1].bulk.equals(bulk));
  });

  it('enforces the frame and body limits before buffering', () => {
    const h = Buffer.alloc(HEADER_SIZE);
    writeHeader(h, 0, { length: MAX_FRAME + 1, op: 34, flags: 0, seq: 3, stream: 0, bodyLen: 8, result: 0 });
    assert.throws(() => new FrameDecoder().push(h), (e: unknown) => e instanceof ProtocolError && e.code === 'RGPU_ERR_FRAME_TOO_LARGE' && e.seq === 3);
    assert.throws(() => checkHeader({ length: 10, op: 1, flags: 0, seq: 0, stream: 0, bodyLen: 11, result: 0 }), /exceeds frame length/);
    assert.throws(() => checkHeader({ length: MAX_BODY + 10, op: 1, flags: 0, seq: 0, stream: 0, bodyLen: MAX_BODY + 1, result: 0 }), (e: unknown) => (e as ProtocolError).code === 'RGPU_ERR_BODY_TOO_LARGE');
    assert.throws(() => new FrameDecoder(1000).push(Buffer.from(encodeFrame(1, { bulk: Buffer.alloc(1001) })[0])), /exceeds the limit of 1000/);
  });

  it('packs and unpacks msgpack arguments by name in op-table order', () => {
    const body = packArgs(Op.MODULE_LOAD, { module: 3, hash: 'ab', kind: 'ptx', size: 10, name: 'm' });
    assert.deepEqual(unpackArgs(Op.MODULE_LOAD, body), { module: 3, hash: 'ab', kind: 'ptx', size: 10, name: 'm' });
    assert.throws(() => unpackArgs(Op.MODULE_LOAD, Buffer.from([0xc1])), (e: unknown) => (e as ProtocolError).code === 'RGPU_ERR_BAD_BODY');
    assert.throws(() => unpackArgs(999, Buffer.alloc(0)), (e: unknown) => (e as ProtocolError).code === 'RGPU_ERR_UNKNOWN_OP');
  });

  it('reads and writes u64 as numbers, refusing values beyond 2^53', () => {
    const b = Buffer.alloc(8);
    writeU64(b, 0, 2 ** 52 + 3);
    assert.equal(readU64(b, 0), 2 ** 52 + 3);
    b.writeUInt32LE(0xffffffff, 4);
    assert.throws(() => readU64(b, 0), RangeError);
    assert.throws(() => writeU64(b, 0, -1), RangeError);
  });

  it('has fixed body sizes matching the generated encoders', () => {
    for (const d of OPS.values()) {
      if (d.body === 'fixed') assert.ok(d.fixedSize > 0 && d.fixedSize % 4 === 0, d.name);
      else assert.equal(d.fixedSize, 0, d.name);
    }
  });
});
