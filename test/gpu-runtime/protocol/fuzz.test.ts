// Fuzz of the frame decoder and the server's dispatcher, in-process (no sockets) so that 100,000+ frames
// take seconds: random frames of every op with random and nearly valid arguments, mutated valid frames,
// and random bytes. Invariants: nothing but ProtocolError escapes, every request that wants a reply gets
// exactly one, quotas hold, and closing frees all device memory.
import { strict as assert } from 'node:assert';
import { pack } from 'msgpackr';
import { Flag, HEADER_SIZE, MAX_BODY, Op, OPS, type OpDescriptor } from '../../../gpu-runtime/protocol/generated/ops';
import { encodeFrame, FrameDecoder, ProtocolError, readHeader, type EncodeOptions, type Frame } from '../../../gpu-runtime/protocol/ts/codec';
import { Client } from '../../../gpu-runtime/server/src/client';
import type { FrameConnection } from '../../../gpu-runtime/server/src/connection';
import { Dispatcher } from '../../../gpu-runtime/server/src/dispatch';
import type { ServerEnv } from '../../../gpu-runtime/server/src/handler';
import { ModuleCache } from '../../../gpu-runtime/server/src/moduleCache';
import { Pool } from '../../../gpu-runtime/server/src/pool';
import { FakeBackend } from '../../helpers/fakeBackend';

/** mulberry32: small, seedable, good enough for fuzzing. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class StubConnection {
  closed = false;
  replies = new Map<number, number>();
  frames = 0;
  send(op: number, o: EncodeOptions): void {
    if (this.closed) return;
    this.frames++;
    assert.ok(op >= 0);
    if ((o.flags ?? 0) & Flag.REPLY) this.replies.set(o.seq ?? 0, (this.replies.get(o.seq ?? 0) ?? 0) + 1);
  }
  end(): void {
    this.closed = true;
  }
  destroy(): void {
    this.closed = true;
  }
}

const FAKE_MODULE = Buffer.from('.entry fill_u32(.param .u64 p, .param .u32 v, .param .u32 n) .entry add_one_f32(.param .u64 p, .param .u32 n) .entry say(.param .u32 k) .global .u32 g[8];');
const QUOTA = { memory: 1 << 20, handles: 64, queuedOps: 256 };

describe('fuzz: frame decoder and dispatcher', function () {
  this.timeout(120000);
  // Nearly every fuzzed frame is refused, and capturing a stack per error would dominate the run time.
  let stackLimit: number;
  before(() => {
    stackLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
  });
  after(() => {
    Error.stackTraceLimit = stackLimit;
  });

  it('decodes random chunkings of valid frames exactly, and random bytes only ever raise ProtocolError', () => {
    const r = rng(0xdec0de);
    const frames: Buffer[] = [];
    for (let i = 0; i < 2000; i++) {
      const body = Buffer.alloc(Math.floor(r() * 64), i & 0xff);
      const bulk = Buffer.alloc(r() < 0.2 ? Math.floor(r() * 5000) : 0, (i * 7) & 0xff);
      frames.push(Buffer.concat(encodeFrame(1 + (i % 200), { seq: i, stream: i & 3, body, bulk })));
    }
    const all = Buffer.concat(frames);
    for (let round = 0; round < 5; round++) {
      const d = new FrameDecoder();
      const got: Frame[] = [];
      for (let off = 0; off < all.length; ) {
        const n = 1 + Math.floor(r() * (round === 0 ? 8 : 9000));
        got.push(...d.push(all.subarray(off, off + n)));
        off += n;
      }
      assert.equal(got.length, frames.length);
      got.forEach((f, i) => {
        assert.equal(f.seq, i);
        assert.deepEqual(Buffer.concat([Buffer.alloc(HEADER_SIZE), f.body, f.bulk]).subarray(HEADER_SIZE), frames[i].subarray(HEADER_SIZE));
      });
      assert.equal(d.pendingBytes, 0);
    }
    let protocolErrors = 0;
    for (let i = 0; i < 20000; i++) {
      const d = new FrameDecoder(1 << 16);
      const junk = Buffer.allocUnsafe(1 + Math.floor(r() * 200));
      for (let j = 0; j < junk.length; j++) junk[j] = Math.floor(r() * 256);
      try {
        d.push(junk);
        assert.ok(d.pendingBytes <= junk.length);
      } catch (e) {
        assert.ok(e instanceof ProtocolError, String(e));
        protocolErrors++;
      }
    }
    assert.ok(protocolErrors > 10000, `random headers mostly break the limits (${protocolErrors})`);
  });

  it('survives >= 100,000 random and mutated frames through the dispatcher', async () => {
    const seed = Number(process.env.RGPU_FUZZ_SEED ?? 0x5eed);
    const r = rng(seed);
    const backend = new FakeBackend([{ type: 'T4', count: 1, totalMem: 1 << 24 }]);
    const pool = new Pool(backend.devices, 'exclusive');
    const env: ServerEnv = { pool, cache: new ModuleCache(1 << 20), serverName: 'fuzz' };
    const dispatcher = new Dispatcher(env);
    const ops = [...OPS.values()];
    let seq = 0;
    let conn!: StubConnection;
    let client!: Client;
    let expected = new Set<number>();
    let restarts = 0;
    let total = 0;
    const stats = { reply: 0, mutated: 0, random: 0 };

    const settle = () => new Promise((res) => setImmediate(res));
    const checkReplies = async (): Promise<void> => {
      await settle();
      await settle();
      if (conn.closed) return;
      for (const s of expected) assert.equal(conn.replies.get(s), 1, `request seq ${s} got ${conn.replies.get(s) ?? 0} replies (seed ${seed})`);
      for (const [s, n] of conn.replies) assert.ok(expected.has(s) && n === 1, `unexpected reply to seq ${s} (seed ${seed})`);
    };
    const start = async (): Promise<void> => {
      if (client) client.close();
      restarts++;
      conn = new StubConnection();
      expected = new Set();
      client = new Client(conn as unknown as FrameConnection, env, dispatcher, { quota: QUOTA });
      client.onFrame(frameOf(Op.HELLO, { seq: ++seq, body: pack([1, '', '', 'session', {}]) }));
      await settle();
      assert.ok(client.currentSession, 'HELLO leased the device');
      conn.replies.clear();
      const ml = ++seq;
      client.onFrame(frameOf(Op.MODULE_LOAD, { seq: ml, body: pack([1, 'h', 'ptx', FAKE_MODULE.length, 'm']), bulk: FAKE_MODULE }));
      conn.replies.clear();
    };
    const frameOf = (op: number, o: EncodeOptions): Frame => {
      const body = o.body ?? Buffer.alloc(0), bulk = Buffer.from(o.bulk ?? Buffer.alloc(0));
      return { length: body.length + bulk.length, op, flags: o.flags ?? 0, seq: o.seq ?? 0, stream: o.stream ?? 0, bodyLen: body.length, result: 0, body, bulk };
    };
    const addresses = (): number[] => {
      const s = client.currentSession;
      if (!s) return [0];
      const out = [s.ctx.va.base, s.ctx.va.base + 256];
      for (const [a, size] of s.allocs.entries()) out.push(a, a + Math.floor(r() * size));
      for (const [a] of s.globals.entries()) out.push(a);
      return out;
    };
    const u64 = (): number => {
      const x = r();
      if (x < 0.4) {
        const a = addresses();
        return a[Math.floor(r() * a.length)];
      }
      if (x < 0.8) return Math.floor(r() * 4096);
      if (x < 0.9) return Math.floor(r() * 2 ** 53);
      return 0;
    };
    const u32 = (): number => (r() < 0.7 ? Math.floor(r() * 8) : Math.floor(r() * 2 ** 32));
    const fixedBody = (d: OpDescriptor): Buffer => {
      const b = Buffer.alloc(d.fixedSize);
      let o = 0;
      // Lay fields as u64 while 8 bytes remain at an 8-aligned offset, else u32: matches most ops, and
      // the rest are garbage the server must refuse cleanly anyway.
      while (o + 4 <= d.fixedSize) {
        if (o + 8 <= d.fixedSize && (d.name.startsWith('MEM') || d.name === 'PING' || d.name.endsWith('DESTROY') && d.fixedSize === 8 || d.name === 'ARRAY_CREATE') && o < 32) {
          const v = u64();
          b.writeUInt32LE(v % 2 ** 32, o);
          b.writeUInt32LE(r() < 0.02 ? 0xffffffff : Math.floor(v / 2 ** 32), o + 4);
          o += 8;
        } else {
          b.writeUInt32LE(u32(), o);
          o += 4;
        }
      }
      return b;
    };
    const randomValue = (): unknown => {
      const x = r();
      if (x < 0.3) return Math.floor(r() * 10);
      if (x < 0.5) return ['ptx', 'fatbin', 'cubin', 'h', ''][Math.floor(r() * 5)];
      if (x < 0.6) return null;
      if (x < 0.7) return { a: 1 };
      if (x < 0.8) return Buffer.alloc(3);
      return -1;
    };
    const validish = (): Frame => {
      const d = ops[Math.floor(r() * ops.length)];
      let body: Buffer;
      if (d.body === 'fixed') body = r() < 0.95 ? fixedBody(d) : Buffer.alloc(Math.floor(r() * 50));
      else if (d.body === 'msgpack') body = pack(d.args.map(() => randomValue()));
      else body = r() < 0.97 ? Buffer.alloc(0) : Buffer.alloc(3);
      let bulk = Buffer.alloc(0);
      if (d.name === 'LAUNCH') bulk = Buffer.alloc(r() < 0.9 ? 16 : Math.floor(r() * 20));
      else if (d.bulk || r() < 0.02) bulk = Buffer.alloc(Math.floor(r() * 600), Math.floor(r() * 256));
      const flags = d.reply === 'none' ? (r() < 0.9 ? Flag.NO_REPLY : 0) : r() < 0.05 ? Flag.NO_REPLY : 0;
      const stream = r() < 0.8 ? 0 : Math.floor(r() * 4);
      return frameOf(d.id, { seq: ++seq, flags, stream, body, bulk });
    };

    await start();
    const N = Number(process.env.RGPU_FUZZ_N ?? 100_000);
    for (let i = 0; i < N; i++) {
      const x = r();
      let frames: Frame[];
      if (x < 0.7) frames = [validish()];
      else if (x < 0.9) {
        // Mutate an encoded valid frame, then decode it as the socket would.
        stats.mutated++;
        const f = validish();
        const buf = Buffer.concat(encodeFrame(f.op, { seq: f.seq, flags: f.flags, stream: f.stream, body: f.body, bulk: f.bulk }));
        const flips = 1 + Math.floor(r() * 4);
        for (let k = 0; k < flips; k++) {
          const at = r() < 0.5 ? Math.floor(r() * Math.min(buf.length, HEADER_SIZE)) : Math.floor(r() * buf.length);
          buf[at] ^= 1 << Math.floor(r() * 8);
        }
        const h = readHeader(buf);
        h.seq = ++seq;
        buf.writeUInt32LE(h.seq, 8);
        try {
          frames = new FrameDecoder().push(buf);
        } catch (e) {
          assert.ok(e instanceof ProtocolError, String(e));
          client.onProtocolError(e);
          await start();
          continue;
        }
      } else {
        stats.random++;
        const body = Buffer.allocUnsafe(Math.floor(r() * 64));
        for (let j = 0; j < body.length; j++) body[j] = Math.floor(r() * 256);
        frames = [frameOf(Math.floor(r() * 300), { seq: ++seq, flags: Math.floor(r() * 8), stream: Math.floor(r() * 3), body })];
      }
      for (const f of frames) {
        total++;
        if (!(f.flags & Flag.NO_REPLY) && f.op !== Op.GOODBYE) expected.add(f.seq);
        client.onFrame(f);
        assert.ok(f.body.length <= MAX_BODY);
      }
      const s = client.currentSession;
      if (s) {
        assert.ok(s.allocs.bytes <= QUOTA.memory, 'memory quota holds');
        assert.ok(s.handleCount <= QUOTA.handles, 'handle quota holds');
      }
      if (!s || s.sticky || conn.closed || i % 500 === 499) {
        await checkReplies();
        await start();
      }
    }
    await checkReplies();
    client.close();
    assert.equal(backend.devices[0].memUsed(), 0, 'every allocation freed');
    assert.equal(pool.sessionCount, 0);
    assert.ok(total >= N * 0.85, `${total} of ${N} fuzzed frames reached the dispatcher`);
    assert.ok(restarts > N / 1000 && restarts < N / 2, `restarts ${restarts}`);
    assert.ok(stats.mutated > 10000 && stats.random > 5000);
  });

  it('survives random frames before and instead of a proper HELLO, and on control connections', async () => {
    const r = rng(0xc0ffee);
    const backend = new FakeBackend([{ type: 'T4', count: 1 }]);
    const pool = new Pool(backend.devices, 'shared');
    const env: ServerEnv = { pool, cache: new ModuleCache(1 << 20), serverName: 'fuzz' };
    const dispatcher = new Dispatcher(env);
    const values = [0, 1, 2, -1, '', 'T4', 'control', 'session', null, {}, [], Buffer.alloc(2), 1e100];
    const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)];
    let replied = 0;
    for (let conn = 0; conn < 400; conn++) {
      const stub = new StubConnection();
      const client = new Client(stub as unknown as FrameConnection, env, dispatcher, { quota: QUOTA, helloTimeoutMs: 60000 });
      if (r() < 0.3) client.onFrame({ length: 0, op: Op.HELLO, flags: 0, seq: 1, stream: 0, bodyLen: 0, result: 0, body: pack([1, '', '', 'control', {}]), bulk: Buffer.alloc(0) });
      for (let i = 0; i < 60; i++) {
        const op = r() < 0.5 ? pick([Op.HELLO, Op.PING, Op.INVENTORY, Op.GOODBYE, Op.CTX_SYNC]) : Math.floor(r() * 200);
        let body: Buffer;
        if (r() < 0.5) body = pack(Array.from({ length: Math.floor(r() * 6) }, () => pick(values)));
        else {
          body = Buffer.allocUnsafe(Math.floor(r() * 16));
          for (let j = 0; j < body.length; j++) body[j] = Math.floor(r() * 256);
        }
        client.onFrame({ length: body.length, op, flags: Math.floor(r() * 8), seq: i + 2, stream: 0, bodyLen: body.length, result: 0, body, bulk: Buffer.alloc(r() < 0.1 ? 5 : 0) });
      }
      await new Promise((res) => setImmediate(res));
      replied += stub.frames;
      client.close();
    }
    assert.ok(replied > 1000, `${replied} frames answered`);
    assert.equal(pool.sessionCount, 0);
    assert.equal(backend.devices[0].memUsed(), 0);
  });
});
