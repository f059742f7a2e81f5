// A small GPU pool stand-in that speaks the frame codec: HELLO (accept, refuse, or queue first), PING,
// INVENTORY, sync ops answered empty, MEMCPY_DTOH answered with a patterned bulk split into odd pieces.
// It records every byte it receives so tests can compare them with what the client sent.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Flag, HEADER_SIZE, Op } from '../../gpu-runtime/protocol/generated/ops';
import { encodeFrame, FrameDecoder, packValue, unpackArgs, type Frame } from '../../gpu-runtime/protocol/ts/codec';

export interface FakeConn {
  sock: net.Socket;
  hello?: Record<string, unknown>;
  /** Every byte received after the HELLO frame. */
  raw: Buffer[];
  frames: Array<{ op: number; flags: number; seq: number; length: number }>;
}

export const INVENTORY = {
  types: [{ type: 'T4', name: 'Tesla T4', memory: 16106127360, total: 2, free: 1, sessions: 1, queued: 0 }],
  devices: [
    { index: 0, type: 'T4', name: 'Tesla T4', memory: 16106127360, memUsed: 1048576 * 300, sessions: ['s-1'] },
    { index: 1, type: 'T4', name: 'Tesla T4', memory: 16106127360, memUsed: 0, sessions: [] },
  ],
  sessions: 1,
  queued: 0,
};

export const pattern = (n: number, seed = 7): Buffer => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
};

export class FakePool {
  readonly conns: FakeConn[] = [];
  /** Result for HELLO (0 = accept). */
  helloResult = 0;
  /** Send this many QUEUED notifications (positions n..1) before the HELLO reply. */
  queueFirst = 0;
  queueDelayMs = 50;
  private sessions = 0;
  private readonly server: net.Server;

  private constructor(private readonly tlsOptions?: tls.TlsOptions) {
    this.server = tlsOptions ? tls.createServer(tlsOptions, (s) => this.accept(s)) : net.createServer((s) => this.accept(s));
  }

  /** tlsOptions: serve TLS (tls:// URLs) with this key and certificate. */
  static async start(port = 0, tlsOptions?: tls.TlsOptions): Promise<FakePool> {
    const p = new FakePool(tlsOptions);
    await new Promise<void>((resolve, reject) => {
      p.server.once('error', reject);
      p.server.listen(port, '127.0.0.1', () => resolve());
    });
    return p;
  }

  get url(): string {
    const port = (this.server.address() as net.AddressInfo).port;
    return this.tlsOptions ? `tls://localhost:${port}` : `tcp://127.0.0.1:${port}`;
  }

  sessionConns(): FakeConn[] {
    return this.conns.filter((c) => c.hello?.purpose === 'session');
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.sock.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private accept(sock: net.Socket): void {
    const conn: FakeConn = { sock, raw: [], frames: [] };
    this.conns.push(conn);
    sock.on('error', () => {});
    const dec = new FrameDecoder();
    let helloSeen = false;
    sock.on('data', (chunk: Buffer) => {
      if (helloSeen) conn.raw.push(Buffer.from(chunk));
      else {
        // Keep the bytes after the HELLO frame when they arrive in the same chunk.
        const len = chunk.length >= HEADER_SIZE ? HEADER_SIZE + chunk.readUInt32LE(0) : Infinity;
        if (chunk.length > len) conn.raw.push(Buffer.from(chunk.subarray(len)));
        helloSeen = chunk.length >= len;
      }
      for (const f of dec.push(chunk)) this.onFrame(conn, f);
    });
  }

  private reply(conn: FakeConn, f: Frame, o: { result?: number; body?: Buffer; bulk?: Buffer } = {}): void {
    const parts = encodeFrame(f.op, { flags: Flag.REPLY, seq: f.seq, stream: f.stream, result: o.result, body: o.body, bulk: o.bulk });
    for (const p of parts) conn.sock.write(p);
  }

  private onFrame(conn: FakeConn, f: Frame): void {
    conn.frames.push({ op: f.op, flags: f.flags, seq: f.seq, length: f.length });
    switch (f.op) {
      case Op.HELLO: {
        conn.hello = unpackArgs(Op.HELLO, f.body);
        if (this.helloResult !== 0) {
          this.reply(conn, f, { result: this.helloResult, body: packValue({ message: 'refused by the fake pool' }) });
          conn.sock.end();
          return;
        }
        const accept = (): void =>
          this.reply(conn, f, { body: packValue({ session: conn.hello!.purpose === 'session' ? `s-${++this.sessions}` : 'control', device: { type: conn.hello!.gpuType || 'T4', name: 'Tesla T4' }, va: { base: 1 << 30, size: 1 << 30 } }) });
        if (conn.hello.purpose === 'session' && this.queueFirst > 0) {
          let pos = this.queueFirst;
          const step = (): void => {
            if (pos === 0) return accept();
            conn.sock.write(encodeFrame(Op.QUEUED, { flags: Flag.NOTIFY, body: packValue([pos, conn.hello!.gpuType || 'T4']) })[0]);
            pos--;
            setTimeout(step, this.queueDelayMs);
          };
          step();
        } else accept();
        return;
      }
      case Op.PING:
        return this.reply(conn, f, { body: Buffer.from(f.body) });
      case Op.INVENTORY:
        return this.reply(conn, f, { body: packValue(INVENTORY) });
      case Op.MEMCPY_DTOH: {
        const size = f.body.readUInt32LE(8);
        const [head, bulk] = encodeFrame(f.op, { flags: Flag.REPLY, seq: f.seq, bulk: pattern(size, f.seq) });
        // Odd pieces so that the proxy sees headers and bulk straddling reads.
        const all = Buffer.concat([head, bulk]);
        for (let o = 0; o < all.length; o += 7919) conn.sock.write(all.subarray(o, o + 7919));
        return;
      }
      case Op.EVENT_QUERY:
        return this.reply(conn, f, { result: 600 }); // CUDA_ERROR_NOT_READY: an error reply
      default:
        if (f.flags & Flag.NO_REPLY) return;
        return this.reply(conn, f);
    }
  }
}
