// Reads into reused buffers: the decoder's transient feed (the caller overwrites the chunk after each call)
// and straight-into-target placement, and the server's FrameConnection using both over a real socket.
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { Op } from '../../../gpu-runtime/protocol/generated/ops';
import { encodeFrame, FrameDecoder, PLACE_MIN, type Frame } from '../../../gpu-runtime/protocol/ts/codec';
import { FrameConnection } from '../../../gpu-runtime/server/src/connection';

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

/** A stream of small (assembled) and larger (placed) frames, each bulk a distinct pattern. */
function stream(): { bytes: Buffer; bulks: Map<number, Buffer> } {
  const sizes = [0, 5, 100, 70_000, PLACE_MIN + 12_345, 3, 2 * PLACE_MIN + 1, 40, PLACE_MIN, 0];
  const bulks = new Map<number, Buffer>();
  const parts: Buffer[] = [];
  sizes.forEach((n, i) => {
    const seq = i + 1;
    const bulk = pattern(n, seq);
    bulks.set(seq, bulk);
    parts.push(...encodeFrame(Op.MEMCPY_HTOD, { seq, body: Buffer.alloc(8, seq), bulk }));
  });
  return { bytes: Buffer.concat(parts), bulks };
}

function checkFrames(frames: Frame[], bulks: Map<number, Buffer>): void {
  assert.deepEqual(frames.map((f) => f.seq), [...bulks.keys()]);
  for (const f of frames) {
    assert.ok(f.body.equals(Buffer.alloc(8, f.seq)), `seq ${f.seq}: body`);
    assert.ok(f.bulk.equals(bulks.get(f.seq)!), `seq ${f.seq}: bulk of ${f.bulk.length} bytes`);
    assert.equal(f.placed, f.bulk.length >= PLACE_MIN, `seq ${f.seq}: placed`);
  }
}

describe('protocol: reads into reused buffers', () => {
  it('feedTransient keeps nothing of the chunk: frames stay exact after the buffer is overwritten', () => {
    const { bytes, bulks } = stream();
    for (const step of [65_536, 4093, 24, 7]) {
      const d = new FrameDecoder(undefined, (h) => Buffer.alloc(h.length - h.bodyLen));
      const scratch = Buffer.allocUnsafe(step);
      const frames: Frame[] = [];
      for (let o = 0; o < bytes.length; o += step) {
        const n = bytes.copy(scratch, 0, o, o + step);
        d.feedTransient(scratch.subarray(0, n), (f) => frames.push(f));
        scratch.fill(0xee); // the socket's next read
      }
      checkFrames(frames, bulks);
      assert.equal(d.pendingBytes, 0, `step ${step}`);
    }
  });

  it('placeTarget/placed: bytes read straight into the target complete the frame, the rest decodes as usual', () => {
    const { bytes, bulks } = stream();
    const d = new FrameDecoder(undefined, (h) => Buffer.alloc(h.length - h.bodyLen));
    const scratch = Buffer.allocUnsafe(4096);
    const frames: Frame[] = [];
    let o = 0;
    let direct = 0;
    while (o < bytes.length) {
      // What FrameConnection's read-buffer choice does: the target while placing, else the scratch buffer.
      const t = d.placeTarget;
      const into = t ?? scratch;
      const n = bytes.copy(into, 0, o, o + Math.min(into.length, 50_000));
      o += n;
      if (t) {
        direct += n;
        d.placed(n, (f) => frames.push(f));
      } else d.feedTransient(scratch.subarray(0, n), (f) => frames.push(f));
    }
    checkFrames(frames, bulks);
    assert.ok(direct > 3 * PLACE_MIN, `most placed bytes were read straight into their targets (${direct})`);
    assert.throws(() => d.placed(1, () => {}), RangeError, 'placed() with no target is a bug, not a silent skip');
  });

  it('FrameConnection over TCP: placed bulks land in their targets, other frames survive the reused read buffer', async () => {
    const { bytes, bulks } = stream();
    const frames: Frame[] = [];
    let reads = 0;
    let placedInto = 0;
    const done = new Promise<void>((resolve, reject) => {
      const server = net.createServer((sock) => {
        const conn = new FrameConnection(sock, {
          onFrame: (f) => {
            frames.push(f);
            if (frames.length === bulks.size) {
              conn.destroy();
              server.close();
              resolve();
            }
          },
          onProtocolError: reject,
          onClose: () => {},
          placeBulk: (h) => {
            placedInto++;
            return Buffer.alloc(h.length - h.bodyLen);
          },
        });
        conn.onRead = () => reads++;
      });
      server.listen(0, '127.0.0.1', () => {
        const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1', () => {
          // Uneven writes, so frame boundaries fall inside reads.
          let o = 0;
          const next = (): void => {
            if (o >= bytes.length) return void c.end();
            const n = 1 + ((o * 7919) % 300_000);
            c.write(bytes.subarray(o, o + n), next);
            o += n;
          };
          next();
        });
        c.on('error', reject);
      });
    });
    await done;
    checkFrames(frames, bulks);
    assert.equal(placedInto, [...bulks.values()].filter((b) => b.length >= PLACE_MIN).length);
    assert.ok(reads > 0, 'onRead ran after reads');
  });
});
