// One intercept connection and its pool connection: frames pass both ways untouched (headers are read,
// bodies of hot ops never decoded), except the two HELLOs: the intercept's, which the proxy completes with
// the pool token and the GPU type it chose, so that credentials never enter the kernel's process, and the
// pool's reply, to which it adds where to dial the session's data lane (laneAddress.ts).
import type * as net from 'node:net';
import { decodeMemcpyDtohLaneReply, Flag, HEADER_SIZE, MAX_BODY, MAX_FRAME, MemcpyDtohLaneReplySize, OPS, Op } from '../../gpu-runtime/protocol/generated/ops';
import { CUresult } from '../../gpu-runtime/protocol/generated/cuResult';
import { checkHeader, encodeFrame, packArgs, packValue, readHeader, unpackArgs, unpackValue } from '../../gpu-runtime/protocol/ts/codec';
import { laneWriteOf } from '../../gpu-runtime/protocol/ts/laneWrite';
import { readIntoOwnBuffers } from '../../gpu-runtime/protocol/ts/socketReads';
import { FrameScanner, type FrameSink } from './frameScanner';
import { completeLaneOffer, laneAddressOf, type LaneAddress } from './laneAddress';
import { ReadBuffers } from './readBuffers';
import type { ProxyStats } from './stats';
import type { SessionInfo, SessionRegistry } from './sessions';
import { errorMessage } from './errors';

export interface ForwarderDeps {
  stats: ProxyStats;
  sessions: SessionRegistry;
  /** Opens this session's pool connection; rejects promptly (PoolUnavailableError) when the pool is down. */
  openPool(): Promise<net.Socket>;
  /** Token and GPU type for this session's HELLO, read when the HELLO arrives. */
  helloFields(): { token: string; gpuType: string };
  log(msg: string): void;
  /** REMOTE_GPU_TRACE=1: session life-cycle lines (never the token). */
  trace?: (msg: string) => void;
}

/** 1 for ops whose requests get a reply unless sent with FLAG_NO_REPLY. */
const EXPECTS_REPLY = new Uint8Array(65536);
for (const d of OPS.values()) if (d.reply !== 'none') EXPECTS_REPLY[d.id] = 1;

/**
 * Bytes queued towards one side before reading from the other pauses. Far above the sockets' 16 KiB
 * default high-water mark, which a single 64 KiB read already exceeds: honouring that mark would pause and
 * resume (two epoll changes and an extra loop turn) at every read of a bulk transfer.
 */
const BACKPRESSURE_BYTES = 4 << 20;

/** Gives up on a peer that does not finish closing after its partner went away. */
const CLOSE_GRACE_MS = 5000;

/**
 * Size of each read buffer. Larger than Node's 64 KiB default so that a bulk crosses the proxy in fewer
 * reads and writes; one read is bounded by what the sender's socket buffer holds anyway.
 */
const READ_SIZE = 256 * 1024;

/** Reads at least this large are written on uncopied (their buffer lent to the write); smaller ones copied. */
const LEND_MIN = 32 * 1024;

/**
 * One direction of the relay: scans the frames read from `from` and writes each chunk on to `to` whole, never
 * split. For small reads `to` is corked at the first chunk of an event-loop turn and uncorked in setImmediate,
 * so all the reads libuv does in one wakeup (up to 32) leave in a single writev; a lone sync request still goes
 * out in the same turn. A large read (`written` given: its buffer is lent) is written at once instead, while
 * its bytes are still cached. `from` pauses while `to` has more than BACKPRESSURE_BYTES queued.
 */
class Pipe {
  private corked = false;
  private paused = false;

  constructor(private readonly scanner: FrameScanner, private readonly from: () => net.Socket | null,
    private readonly to: () => net.Socket | null, private readonly fail: (msg: string) => void, private readonly sender: string) {}

  /** `written`, when given, runs once the chunk has been handed to the kernel (its buffer is then free). */
  readonly data = (chunk: Buffer, written?: () => void): void => {
    try {
      this.scanner.scan(chunk);
    } catch (e) {
      written?.();
      return this.fail(`${this.sender} sent a bad frame: ${errorMessage(e)}`);
    }
    const to = this.to()!;
    if (written) {
      to.write(chunk, written);
      this.uncork();
    } else {
      if (!this.corked) {
        this.corked = true;
        to.cork();
        setImmediate(this.uncork);
      }
      to.write(chunk);
    }
    if (to.writableLength > BACKPRESSURE_BYTES && !this.paused) {
      this.paused = true;
      this.from()!.pause();
      to.once('drain', this.resume);
    }
  };

  // Each cork() is paired with one uncork(): a large read may uncork before the setImmediate does.
  private readonly uncork = (): void => {
    if (!this.corked) return;
    this.corked = false;
    this.to()?.uncork();
  };

  private readonly resume = (): void => {
    this.paused = false;
    this.from()?.resume();
  };
}

export class Forwarder {
  private readonly client: net.Socket;
  private readonly key: number;
  private readonly info: SessionInfo;
  private pool: net.Socket | null = null;
  /** Where the intercept may dial this session's data lane (laneAddress.ts). */
  private laneAddress: LaneAddress | null = null;
  private poolError: Error | null = null;
  private hello: Buffer | null = null;
  private helloSent = false;
  private closed = false;
  /** Sync requests awaiting their reply: seq → performance.now() at the request. */
  private readonly pending = new Map<number, number>();
  private readonly up: FrameScanner;
  private readonly down: FrameScanner;
  /** intercept → pool and pool → intercept. */
  private readonly upPipe: Pipe;
  private readonly downPipe: Pipe;
  private readonly upBufs = new ReadBuffers(READ_SIZE);
  private readonly downBufs = new ReadBuffers(READ_SIZE);
  /** The client reads through onClientRead (our own buffers) rather than 'data' events. */
  private readonly ownReads: boolean;
  /** The HELLO has been completed and sent: client bytes are forwarded. */
  private forwarding = false;
  /** The pool's HELLO reply has been forwarded: pool bytes go through downPipe untouched. */
  private helloReplied = false;
  /** Pool bytes before the HELLO reply is complete. */
  private poolHello: Buffer | null = null;

  constructor(client: net.Socket, private readonly deps: ForwarderDeps, private readonly onDone: (f: Forwarder) => void = () => {}) {
    this.key = deps.sessions.open(deps.helloFields().gpuType);
    this.info = deps.sessions.get(this.key)!;
    this.up = new FrameScanner(this.upSink);
    this.down = new FrameScanner(this.downSink);
    const fail = (m: string) => this.fail(m);
    this.upPipe = new Pipe(this.up, () => this.client, () => this.pool, fail, 'intercept');
    this.downPipe = new Pipe(this.down, () => this.pool, () => this.client, fail, 'pool');
    const own = readIntoOwnBuffers(client, this.upBufs.next, this.onClientRead);
    this.ownReads = own !== null;
    this.client = client = own ?? client;
    if (!own) client.on('data', this.onHelloData);
    client.on('end', () => this.pool?.end());
    client.on('error', (e) => this.fail(`intercept connection: ${e.message}`));
    client.on('close', () => this.finish(this.pool));
    deps.openPool().then(
      (sock) => this.onPoolOpen(sock),
      (e: Error) => {
        this.poolError = e;
        this.trySendHello();
      },
    );
  }

  /** Closes both sides (proxy shutdown). */
  close(): void {
    this.client.destroy();
    this.pool?.destroy();
  }

  // --- handshake ---------------------------------------------------------------------------

  private readonly onHelloData = (chunk: Buffer): void => {
    this.hello = this.hello ? Buffer.concat([this.hello, chunk]) : chunk;
    if (this.hello.length < HEADER_SIZE) return;
    const h = readHeader(this.hello);
    if (h.op !== Op.HELLO) return this.reject(h.op, h.seq, CUresult.CUDA_ERROR_NOT_INITIALIZED, 'the first frame of a connection must be HELLO');
    try {
      checkHeader(h, MAX_FRAME);
    } catch (e) {
      return this.reject(h.op, h.seq, CUresult.CUDA_ERROR_INVALID_VALUE, errorMessage(e));
    }
    // HELLO carries no bulk, so it is at most MAX_BODY: buffering it whole is bounded.
    if (h.length !== h.bodyLen) return this.reject(h.op, h.seq, CUresult.CUDA_ERROR_INVALID_VALUE, 'HELLO carries no bulk data');
    if (this.hello.length < HEADER_SIZE + h.length) return;
    if (!this.ownReads) this.client.off('data', this.onHelloData);
    this.client.pause();
    this.trySendHello();
  };

  private onPoolOpen(sock: net.Socket): void {
    if (this.closed) {
      sock.destroy();
      return;
    }
    // Asked of the socket as connectPool made it: the one readIntoOwnBuffers makes knows no Unix path.
    this.laneAddress = laneAddressOf(sock);
    const own = readIntoOwnBuffers(sock, this.downBufs.next, this.onPoolRead);
    if (!own) sock.on('data', (c: Buffer) => (this.helloReplied ? this.downPipe.data(c) : this.onPoolHandshake(c)));
    this.pool = sock = own ?? sock;
    sock.on('end', () => this.client.end());
    sock.on('error', (e) => this.fail(`pool connection: ${e.message}`));
    sock.on('close', () => this.finish(this.client));
    this.trySendHello();
  }

  /** Runs once the HELLO is complete and the pool connection has either opened or failed. */
  private trySendHello(): void {
    const buf = this.hello;
    if (this.helloSent || this.closed || !buf || buf.length < HEADER_SIZE) return;
    const h = readHeader(buf);
    if (buf.length < HEADER_SIZE + h.length) return;
    if (this.poolError) return this.reject(Op.HELLO, h.seq, CUresult.CUDA_ERROR_DEVICE_UNAVAILABLE, this.poolError.message);
    const pool = this.pool;
    if (!pool) return;
    let args: Record<string, unknown>;
    try {
      args = unpackArgs(Op.HELLO, buf.subarray(HEADER_SIZE, HEADER_SIZE + h.bodyLen), h.seq);
    } catch (e) {
      return this.reject(Op.HELLO, h.seq, CUresult.CUDA_ERROR_INVALID_VALUE, errorMessage(e));
    }
    const fields = this.deps.helloFields();
    const gpuType = fields.gpuType || (typeof args.gpuType === 'string' ? args.gpuType : '');
    const client = args.client as { pid?: unknown; argv0?: unknown } | null;
    if (client && typeof client === 'object') {
      if (typeof client.pid === 'number') this.info.pid = client.pid;
      if (typeof client.argv0 === 'string') this.info.argv0 = client.argv0;
    }
    this.info.gpuType = gpuType;
    const body = packArgs(Op.HELLO, { ...args, token: fields.token, gpuType });
    const frame = encodeFrame(Op.HELLO, { flags: h.flags, seq: h.seq, stream: h.stream, body });
    const rest = buf.subarray(HEADER_SIZE + h.length);
    this.hello = null;
    this.helloSent = true;
    this.upSink.onHeader(Op.HELLO, h.flags, h.seq, body.length, body.length, 0);
    try {
      if (rest.length) this.up.scan(rest);
    } catch (e) {
      return this.fail(`intercept sent a bad frame: ${errorMessage(e)}`);
    }
    pool.cork();
    pool.write(frame[0]);
    if (rest.length) pool.write(rest);
    pool.uncork();
    this.forwarding = true;
    if (!this.ownReads) this.client.on('data', this.upPipe.data);
    this.client.resume();
  }

  /**
   * Pool bytes until the HELLO reply is complete: frames before it (QUEUED) pass as they are, the reply gets
   * the lane address, and from then on the pool's bytes are relayed untouched.
   */
  private onPoolHandshake(chunk: Buffer): void {
    let buf = this.poolHello ? Buffer.concat([this.poolHello, chunk]) : chunk;
    this.poolHello = null;
    while (!this.helloReplied && buf.length >= HEADER_SIZE) {
      const h = readHeader(buf);
      if (h.length > MAX_BODY) return this.fail('pool sent an oversize frame before its HELLO reply');
      const end = HEADER_SIZE + h.length;
      if (buf.length < end) break;
      let frame = buf.subarray(0, end);
      if (h.op === Op.HELLO && (h.flags & Flag.REPLY) !== 0) {
        this.helloReplied = true;
        if (h.result === 0 && h.length === h.bodyLen) frame = this.withLaneAddress(h.flags, h.seq, h.stream, frame);
      }
      this.downPipe.data(frame);
      buf = buf.subarray(end);
    }
    if (this.helloReplied) {
      if (buf.length) this.downPipe.data(buf);
    } else if (buf.length) this.poolHello = Buffer.from(buf);
  }

  private withLaneAddress(flags: number, seq: number, stream: number, frame: Buffer): Buffer {
    try {
      const body = completeLaneOffer(frame.subarray(HEADER_SIZE), this.laneAddress);
      return body ? Buffer.concat(encodeFrame(Op.HELLO, { flags, seq, stream, body })) : frame;
    } catch (e) {
      this.deps.log(`session ${this.info.id}: HELLO reply forwarded without a lane address: ${errorMessage(e)}`);
      return frame;
    }
  }

  /** Answers a request with an error reply and closes, as the server does after a failed HELLO. */
  private reject(op: number, seq: number, result: number, message: string): void {
    this.deps.log(`session ${this.info.id}: ${message}`);
    this.helloSent = true;
    if (!this.ownReads) this.client.off('data', this.onHelloData);
    else this.client.pause();
    this.deps.stats.errors++;
    const frame = encodeFrame(op, { flags: Flag.REPLY, seq, result, body: packValue({ message }) });
    this.client.end(frame[0]);
    this.pool?.destroy();
  }

  // --- forwarding (hot path): reads go to the Pipe of their direction ------------------------------------

  private readonly onClientRead = (n: number, buf: Buffer): void => {
    if (!this.forwarding) return this.onHelloData(Buffer.from(buf.subarray(0, n)));
    const chunk = buf.subarray(0, n);
    if (n < LEND_MIN) this.upPipe.data(Buffer.from(chunk));
    else this.upPipe.data(chunk, this.upBufs.lend(buf));
  };

  private readonly onPoolRead = (n: number, buf: Buffer): void => {
    if (!this.helloReplied) return this.onPoolHandshake(Buffer.from(buf.subarray(0, n)));
    const chunk = buf.subarray(0, n);
    if (n < LEND_MIN) this.downPipe.data(Buffer.from(chunk));
    else this.downPipe.data(chunk, this.downBufs.lend(buf));
  };

  private readonly upSink: FrameSink = {
    onHeader: (op, flags, seq, length) => {
      this.deps.stats.request(op, HEADER_SIZE + length);
      if (EXPECTS_REPLY[op] === 1 && (flags & (Flag.NO_REPLY | Flag.REPLY | Flag.NOTIFY)) === 0) {
        if (!this.pending.has(seq)) this.deps.stats.queueDepth++;
        this.pending.set(seq, performance.now());
      }
      return op === Op.MEMCPY_HTOD_LANE || op === Op.MEMCPY_HTOD_2D_LANE;
    },
    // A copy's bytes on the data lane never cross the proxy; its request says how many there are.
    onBody: (op, _flags, _seq, _result, body) => {
      this.info.lane = true;
      const w = laneWriteOf(op, body);
      if (w) this.deps.stats.lane(op, w.bytes, true);
    },
  };

  private readonly downSink: FrameSink = {
    onHeader: (op, flags, seq, length, _bodyLen, result) => {
      const bytes = HEADER_SIZE + length;
      const stats = this.deps.stats;
      if (flags & Flag.REPLY) {
        const t0 = this.pending.get(seq);
        let ms = -1;
        if (t0 !== undefined) {
          this.pending.delete(seq);
          stats.queueDepth--;
          ms = performance.now() - t0;
        }
        // A HELLO reply may have waited in the pool's queue: its time is not a network round trip.
        stats.reply(op, bytes, ms, result, op !== Op.HELLO);
        return op === Op.HELLO || ((op === Op.MEMCPY_DTOH_LANE || op === Op.MEMCPY_DTOH_2D_LANE) && result === 0);
      }
      stats.inbound(bytes);
      return op === Op.QUEUED && (flags & Flag.NOTIFY) !== 0;
    },
    onBody: (op, _flags, seq, result, body) => {
      if (op === Op.MEMCPY_DTOH_LANE || op === Op.MEMCPY_DTOH_2D_LANE) {
        this.info.lane = true;
        if (body.length === MemcpyDtohLaneReplySize) this.deps.stats.lane(op, decodeMemcpyDtohLaneReply(body).laneBytes, false);
        return;
      }
      try {
        if (op === Op.HELLO) this.onHelloReply(result, body);
        else this.onQueued(unpackArgs(Op.QUEUED, body, seq));
      } catch (e) {
        this.deps.log(`session ${this.info.id}: undecodable ${op === Op.HELLO ? 'HELLO reply' : 'QUEUED'}: ${errorMessage(e)}`);
      }
    },
  };

  private onHelloReply(result: number, body: Buffer): void {
    const v = unpackValue(body, 'HELLO reply') as { session?: unknown; device?: { type?: unknown; name?: unknown }; message?: unknown } | null;
    if (result !== 0) {
      this.deps.log(`session ${this.info.id}: pool refused HELLO (${result}): ${String(v?.message ?? '')}`);
      return;
    }
    if (typeof v?.session === 'string') this.info.id = v.session;
    if (typeof v?.device?.name === 'string') this.info.device = v.device.name;
    if (typeof v?.device?.type === 'string') this.info.gpuType = v.device.type;
    this.info.state = 'attached';
    delete this.info.queuePosition;
    this.deps.trace?.(`session ${this.info.id} attached to ${this.info.device ?? '?'} (${this.info.gpuType}) for pid ${this.info.pid ?? '?'} ${this.info.argv0 ?? ''}`);
  }

  private onQueued(a: Record<string, unknown>): void {
    this.info.state = 'queued';
    if (typeof a.position === 'number') this.info.queuePosition = a.position;
    this.deps.trace?.(`session ${this.info.id} queued at position ${String(a.position)}`);
    if (typeof a.type === 'string' && a.type) this.info.gpuType = a.type;
  }

  // --- teardown ----------------------------------------------------------------------------

  private fail(msg: string): void {
    if (this.closed) return;
    this.deps.log(`session ${this.info.id}: ${msg}`);
    this.client.destroy();
    this.pool?.destroy();
    this.finish(null);
  }

  /** One side closed: let the other finish writing what it has, then make sure it goes too. */
  private finish(other: net.Socket | null): void {
    if (other && !other.destroyed) {
      other.end();
      setTimeout(() => other.destroy(), CLOSE_GRACE_MS).unref();
    }
    if (this.closed) return;
    this.closed = true;
    this.deps.stats.queueDepth -= this.pending.size;
    this.pending.clear();
    this.deps.sessions.close(this.key);
    this.deps.trace?.(`session ${this.info.id} closed`);
    this.onDone(this);
  }
}
