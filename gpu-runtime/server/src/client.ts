// One connected client from HELLO to close: the handshake (version, token, purpose), the wait for a device
// with QUEUED notifications, then the session's frames through the dispatcher. Closing, for whatever
// reason, frees the session and gives the device to the next queued client.
import { timingSafeEqual, createHash, randomBytes } from 'node:crypto';
import { CudaError, CUresult } from './backend';
import { Flag, MAX_FRAME, Op, PROTOCOL_VERSION } from '../../protocol/generated/ops';
import { laneWriteOf } from '../../protocol/ts/laneWrite';
import { packArgs, packValue, unpackArgs, type Frame, type FrameHeader, type ProtocolError } from '../../protocol/ts/codec';
import type { FrameConnection } from './connection';
import type { Dispatcher, ReplySink } from './dispatch';
import type { Reply, ServerEnv } from './handler';
import { controlOps } from './handlers/control';
import { placeHtod, placeLaneWrite } from './handlers/memory';
import { Lane } from './lane';
import type { Lease, PendingLease } from './pool';
import type { ServerCounters } from './metrics';
import { OP_SLOTS, Session, toCudaError, type Quota } from './session';
import { wireU64 } from './wire';

export interface ClientOptions {
  token?: string;
  /** A connection that has not said HELLO by then is closed (default 30 s). */
  helloTimeoutMs?: number;
  counters?: ServerCounters;
  quota: Quota;
  /** Set when the connection is over a connection limit: its HELLO is answered with this and it closes. */
  refusal?: string;
  /**
   * Tickets of sessions that may attach a data lane (LANE_ATTACH), shared by all clients of a server; absent
   * when the server offers no lanes (a TLS listener: a lane would carry copies in the clear).
   */
  laneTickets?: Map<string, Client>;
  /** Called for session start/end (metrics, logs). */
  onSession?(event: 'start' | 'end', s: Session): void;
  log?(msg: string): void;
}

type State = 'hello' | 'queued' | 'session' | 'control' | 'lane' | 'closed';

/** Frames a client may send while it waits in the queue (it should send none but PING). */
const MAX_EARLY_FRAMES = 4096;
/**
 * Bytes an unauthenticated connection may have buffered before its HELLO: a HELLO is a few hundred bytes,
 * and without this a client could park a 64 MiB partial frame per connection for the HELLO timeout.
 */
const MAX_PRE_HELLO_BYTES = 64 * 1024;

let sessionCounter = 0;

function sameToken(expected: string, given: unknown): boolean {
  if (typeof given !== 'string') return false;
  // Compare digests so that neither length nor content leaks through timing.
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}

export class Client implements ReplySink {
  private state: State = 'hello';
  private session: Session | null = null;
  private pendingLease: PendingLease | null = null;
  private early: Frame[] = [];
  readonly id = `s-${++sessionCounter}`;
  private helloTimer: NodeJS.Timeout | null;
  /** The ticket this session's lane may attach with, until it does. */
  private laneTicket: string | null = null;
  /** On a lane connection: the session client it carries bytes for. */
  private laneOwner: Client | null = null;

  constructor(
    private readonly conn: FrameConnection,
    private readonly env: ServerEnv,
    private readonly dispatcher: Dispatcher,
    private readonly opts: ClientOptions,
  ) {
    // Connections that never say HELLO would otherwise hold a socket (and a partial frame) forever.
    this.helloTimer = setTimeout(() => {
      this.opts.log?.(`${this.id}: no HELLO within ${opts.helloTimeoutMs ?? 30000} ms, closing`);
      this.close();
    }, opts.helloTimeoutMs ?? 30000);
    this.helloTimer.unref();
    const checkPreHello = (): void => {
      if (this.state !== 'hello') {
        conn.onRead = null;
        return;
      }
      if (conn.pendingBytes > MAX_PRE_HELLO_BYTES) {
        this.opts.log?.(`${this.id}: ${conn.pendingBytes} bytes before HELLO, closing`);
        this.close();
      }
    };
    conn.onRead = checkPreHello;
  }

  private clearHelloTimer(): void {
    if (this.helloTimer) clearTimeout(this.helloTimer);
    this.helloTimer = null;
  }

  private readonly releaseHold = (): void => this.conn.release();

  /** FrameConnection's placer: large MEMCPY_HTOD bulks go straight into device memory. */
  readonly placeBulk = (h: FrameHeader, body: Buffer): Buffer | null =>
    this.state === 'session' && !this.session!.isDestroyed ? placeHtod(h, body, this.session!) : null;

  get currentSession(): Session | null {
    return this.session;
  }

  private lastPending = 0;
  private stalls = 0;

  /**
   * Called by the server every half `--partial-frame timeout`: a partial frame that made no progress across
   * two calls (and not because we paused the socket) is a client holding memory for nothing, or gone.
   */
  sweep(): void {
    const p = this.conn.pendingBytes;
    if (p === 0 || p !== this.lastPending || this.conn.socket.isPaused() || this.state === 'closed') {
      this.lastPending = p;
      this.stalls = 0;
      return;
    }
    if (++this.stalls < 2) return;
    this.opts.log?.(`${this.id}: a partial frame (${p} bytes) made no progress, closing`);
    this.close();
  }

  /** Never throws: a frame that trips a bug is answered as an error, and the server keeps running. */
  onFrame(f: Frame): void {
    if (this.opts.counters) this.opts.counters.ops[f.op < OP_SLOTS ? f.op : OP_SLOTS - 1]++;
    try {
      this.handleFrame(f);
    } catch (e) {
      this.opts.log?.(`${this.id}: op ${f.op} seq ${f.seq}: ${(e as Error).stack ?? e}`);
      if ((f.flags & Flag.NO_REPLY) === 0) this.fail(f, toCudaError(e));
    }
  }

  private ping(f: Frame): void {
    if (f.body.length !== 8 || f.bulk.length) return this.refuse(f, CUresult.CUDA_ERROR_INVALID_VALUE, `PING: body of ${f.body.length} bytes, expected 8`);
    this.reply(f, controlOps.PING(f));
  }

  private handleFrame(f: Frame): void {
    switch (this.state) {
      case 'session': {
        const s = this.session!;
        s.bytesIn += f.length;
        if (f.op === Op.GOODBYE) return this.close();
        if (f.op === Op.MEMCPY_HTOD_LANE || f.op === Op.MEMCPY_HTOD_2D_LANE) return this.laneWrite(f, s);
        this.dispatcher.run(f, s, this);
        if (s.readHold === f) this.conn.hold();
        return;
      }
      case 'hello':
        if (f.op === Op.HELLO) return this.hello(f);
        if (f.op === Op.LANE_ATTACH) return this.attachLane(f);
        if (f.op === Op.PING) return this.ping(f);
        return this.refuse(f, CUresult.CUDA_ERROR_NOT_INITIALIZED, 'send HELLO first');
      case 'queued':
        if (f.op === Op.PING) return this.ping(f);
        if (f.op === Op.GOODBYE) return this.close();
        if (this.early.length >= MAX_EARLY_FRAMES) return this.close();
        this.early.push(f);
        return;
      case 'control':
        if (f.op === Op.PING) return this.ping(f);
        if (f.op === Op.INVENTORY) return this.reply(f, controlOps.INVENTORY(f, this.env));
        if (f.op === Op.GOODBYE) return this.close();
        return this.refuse(f, CUresult.CUDA_ERROR_NOT_PERMITTED, 'a control connection serves only INVENTORY and PING');
      case 'lane': // a lane carries no frames after its LANE_ATTACH
      case 'closed':
        return this.close();
    }
  }

  // --- data lane -------------------------------------------------------------------------------------

  /**
   * MEMCPY_HTOD_LANE / MEMCPY_HTOD_2D_LANE: the bytes come on the lane. The session's later frames wait (the
   * connection is held) until they have landed, and the copy then runs as the MEMCPY_HTOD(_2D) it stands
   * for, with every check and error of one. The lane's bytes are taken whatever happens to the copy:
   * skipping them would give them to the next copy.
   */
  private laneWrite(f: Frame, s: Session): void {
    const lane = s.lane;
    const flat = f.op === Op.MEMCPY_HTOD_LANE;
    const w = laneWriteOf(f.op, f.body);
    if (!w || (!lane && !s.remoteLane)) {
      this.opts.log?.(`${this.id}: op ${f.op} ${lane || s.remoteLane ? 'with a malformed body' : 'without a data lane'}, closing`);
      return this.close();
    }
    const { dst, bytes: size } = w;
    if (!(size <= MAX_FRAME)) {
      this.opts.log?.(`${this.id}: a lane write of ${size} bytes exceeds the ${MAX_FRAME}-byte limit, closing`);
      return this.close();
    }
    s.bytesIn += size;
    if (!lane) {
      // The context's process reads the lane itself, in the order it gets the calls: no hold. Its handler
      // passes the bytes on; when anything refuses the copy first, they are still taken off the lane.
      s.laneTaken = false;
      this.dispatcher.run(f, s, this);
      if (!s.laneTaken) s.ctx.laneSkip!(size);
      return;
    }
    // Packed 2D rows cannot land in place: they are staged, then written row by row.
    const placed = !flat || s.isDestroyed ? null : placeLaneWrite(s, f.stream, dst, size);
    const target = placed ?? Buffer.allocUnsafe(size);
    this.conn.hold();
    lane.expect(target).then(
      () => {
        if (this.state !== 'session') return;
        // MEMCPY_HTOD's body is MEMCPY_HTOD_LANE's first field; MEMCPY_HTOD_2D's is MEMCPY_HTOD_2D_LANE's.
        const body = flat ? f.body.subarray(0, 8) : f.body;
        this.dispatcher.run({ ...f, op: flat ? Op.MEMCPY_HTOD : Op.MEMCPY_HTOD_2D, body, bulk: target, placed: placed !== null }, s, this);
        this.conn.release();
      },
      () => {}, // the lane is lost: Lane.fail closes the session
    );
  }

  /** A new connection names a session's ticket: it becomes that session's data lane. */
  private attachLane(f: Frame): void {
    this.clearHelloTimer();
    let a: Record<string, unknown>;
    try {
      a = unpackArgs(Op.LANE_ATTACH, f.body, f.seq);
    } catch (e) {
      return this.helloFailed(f, CUresult.CUDA_ERROR_INVALID_VALUE, (e as Error).message);
    }
    const tickets = this.opts.laneTickets;
    const owner = typeof a.ticket === 'string' ? tickets?.get(a.ticket) : undefined;
    const s = owner?.session;
    if (a.version !== PROTOCOL_VERSION || !owner || !s || s.id !== a.session || s.lane || s.remoteLane || this.opts.refusal) {
      return this.helloFailed(f, CUresult.CUDA_ERROR_NOT_PERMITTED, 'no session of this server has that lane ticket');
    }
    tickets!.delete(a.ticket as string);
    owner.laneTicket = null;
    if (s.ctx.adoptLane) return this.handLane(f, owner, s);
    const lane = new Lane((why) => {
      this.opts.log?.(`${owner.id}: ${why}; the session ends with it`);
      owner.close();
    }).bind(this.conn.socket);
    this.conn.becomeRaw(lane);
    this.state = 'lane';
    this.laneOwner = owner;
    s.lane = lane;
    this.conn.send(Op.LANE_ATTACH, { flags: Flag.REPLY, seq: f.seq });
  }

  /**
   * The context runs in a process of its own (a CUDA worker): the lane's socket goes there, so copy payloads
   * never cross this process. Nothing is read here after the attach frame; lane writes announced meanwhile
   * wait in the worker until the socket arrives.
   */
  private handLane(f: Frame, owner: Client, s: Session): void {
    this.conn.socket.pause();
    s.remoteLane = true;
    this.state = 'lane';
    this.conn.send(Op.LANE_ATTACH, { flags: Flag.REPLY, seq: f.seq }, (err) => {
      const handed = !err && !s.isDestroyed && s.ctx.adoptLane!(this.conn.socket);
      if (!handed) {
        this.opts.log?.(`${owner.id}: the data lane could not be handed to the session's worker; the session ends`);
        owner.close();
      }
      this.conn.destroy(); // this process's end of the socket (its handle went to the worker)
    });
  }

  /** A header that breaks the limits: framing is lost, so answer once and close. */
  onProtocolError(e: ProtocolError): void {
    this.conn.send(0, { flags: Flag.REPLY, seq: e.seq, result: CUresult.CUDA_ERROR_INVALID_VALUE, body: packValue({ message: e.message, code: e.code }) });
    this.close();
  }

  onClose(): void {
    this.close();
  }

  // --- ReplySink ------------------------------------------------------------------------------------

  reply(req: Frame, r: Reply | void): void {
    if (this.state === 'closed') return;
    this.flushPrintf();
    const s = this.session;
    const o = { flags: Flag.REPLY, seq: req.seq, stream: req.stream, result: r?.result ?? 0, body: r?.body, bulk: r?.bulk };
    const held = s !== null && s.readHold === req;
    if (held) s.readHold = null;
    if (r?.lane) {
      // The lane's bytes first: the client reads them once it has this reply, and the view they may come
      // from must stay as it is until they are written.
      s!.lane!.send(r.lane, held ? this.releaseHold : undefined);
      this.conn.send(req.op, o);
    } else this.conn.send(req.op, o, held ? this.releaseHold : undefined);
    if (s) s.bytesOut += (r?.body?.length ?? 0) + (r?.bulk?.length ?? 0) + (r?.lane?.length ?? 0);
  }

  fail(req: Frame, e: CudaError): void {
    if (this.state === 'closed') return;
    this.opts.log?.(`${this.id}: op ${req.op} seq ${req.seq}: ${e.message}`);
    this.reply(req, { result: e.code, body: packValue({ message: e.message }) });
  }

  private refuse(f: Frame, code: number, message: string): void {
    if ((f.flags & Flag.NO_REPLY) === 0) this.fail(f, new CudaError(code, message));
  }

  private flushPrintf(): void {
    const text = this.session?.takePrintf();
    if (text) this.conn.send(Op.PRINTF, { flags: Flag.NOTIFY, bulk: Buffer.from(text, 'utf8') });
  }

  // --- handshake ------------------------------------------------------------------------------------

  /** Answers a failed HELLO and closes, as contracts.md says. */
  private helloFailed(f: Frame, code: number, message: string): void {
    this.fail(f, new CudaError(code, message));
    this.close();
  }

  private hello(f: Frame): void {
    this.clearHelloTimer();
    // Refused before the token is even looked at: a refused connection learns nothing but the limit.
    if (this.opts.refusal) return this.helloFailed(f, CUresult.CUDA_ERROR_DEVICE_UNAVAILABLE, this.opts.refusal);
    let a: Record<string, unknown>;
    try {
      a = unpackArgs(Op.HELLO, f.body, f.seq);
    } catch (e) {
      return this.helloFailed(f, CUresult.CUDA_ERROR_INVALID_VALUE, (e as Error).message);
    }
    if (a.version !== PROTOCOL_VERSION) {
      return this.helloFailed(f, CUresult.CUDA_ERROR_NOT_SUPPORTED, `protocol version ${String(a.version)} is not supported; this server speaks version ${PROTOCOL_VERSION}`);
    }
    if (this.opts.token !== undefined && !sameToken(this.opts.token, a.token)) {
      return this.helloFailed(f, CUresult.CUDA_ERROR_NOT_PERMITTED, 'bad token');
    }
    const purpose = a.purpose ?? 'session';
    if (purpose === 'control') {
      this.state = 'control';
      return this.reply(f, { body: packValue({ server: this.env.serverName, types: this.env.pool.types }) });
    }
    if (purpose !== 'session') return this.helloFailed(f, CUresult.CUDA_ERROR_INVALID_VALUE, `purpose "${String(purpose)}" (expected session or control)`);
    const gpuType = typeof a.gpuType === 'string' ? a.gpuType : '';
    this.state = 'queued';
    this.pendingLease = this.env.pool.acquire(this.id, gpuType, (position, type) => {
      this.conn.send(Op.QUEUED, { flags: Flag.NOTIFY, body: packArgs(Op.QUEUED, { position, type }) });
    });
    this.pendingLease.promise.then(
      (lease) => this.leased(f, lease, a.client),
      (e: CudaError) => {
        if (this.state !== 'closed') this.helloFailed(f, e.code ?? CUresult.CUDA_ERROR_NO_DEVICE, e.message);
      },
    );
  }

  private leased(f: Frame, lease: Lease, client: unknown): void {
    this.pendingLease = null;
    if (this.state === 'closed') {
      this.env.pool.release(lease);
      return;
    }
    const device = lease.device.device;
    const quota: Quota = { ...this.opts.quota, memory: Math.min(this.opts.quota.memory, device.info.totalMem) };
    // Twice the quota so that the client's first-fit allocator does not run out of window first.
    const vaSize = Math.ceil((2 * quota.memory) / 2 ** 21) * 2 ** 21;
    const failed = (e: unknown): void => {
      this.env.pool.release(lease);
      if (this.state !== 'closed') this.helloFailed(f, e instanceof CudaError ? e.code : CUresult.CUDA_ERROR_UNKNOWN, `cannot create a context: ${(e as Error).message}`);
    };
    if (device.createContextAsync) {
      // A context in a worker process: the connection stays 'queued' (frames wait in `early`) until it runs.
      device.createContextAsync({ vaSize }).then((ctx) => {
        if (this.state === 'closed') {
          ctx.destroy();
          this.env.pool.release(lease);
          return;
        }
        this.started(f, new Session(this.id, lease, ctx, quota), client);
      }, failed).catch((e: unknown) => {
        // A bug past this point must cost this connection, never the server (an unhandled rejection would).
        this.opts.log?.(`${this.id}: starting the session failed: ${(e as Error)?.stack ?? e}`);
        this.close();
      });
      return;
    }
    let s: Session;
    try {
      s = new Session(this.id, lease, device.createContext({ vaSize }), quota);
    } catch (e) {
      return failed(e);
    }
    this.started(f, s, client);
  }

  private started(f: Frame, s: Session, client: unknown): void {
    const lease = s.lease;
    const info = lease.device.device.info;
    const quota = s.quota;
    this.session = s;
    this.state = 'session';
    this.env.pool.describe(this.id, client, () => s.allocs.bytes);
    s.onPrintfReady = () => this.flushPrintf();
    this.opts.onSession?.('start', s);
    this.opts.log?.(`${this.id}: ${info.type} #${lease.device.index} for ${JSON.stringify(client ?? {})}`);
    this.reply(f, {
      body: packValue({
        session: this.id,
        device: {
          type: info.type,
          name: info.name,
          totalMem: wireU64(info.totalMem),
          uuid: Buffer.from(info.uuid),
          ccMajor: info.ccMajor,
          ccMinor: info.ccMinor,
          attributes: info.attributes,
          driverVersion: info.driverVersion,
          pciDomain: info.pciDomain,
          pciBus: info.pciBus,
          pciDevice: info.pciDevice,
        },
        va: { base: wireU64(s.ctx.va.base), size: wireU64(s.ctx.va.size) },
        quota: { memory: wireU64(quota.memory), handles: quota.handles, queuedOps: quota.queuedOps },
        server: this.env.serverName,
        // Lets the client refuse texture/surface objects synchronously on a device that has none.
        features: { textures: typeof s.ctx.createTexObject === 'function' },
        // skipsServer: the lane's bytes would not even cross this process (a CUDA worker takes the socket), so
        // a client connected directly gains from one too.
        ...(this.offerLane() ? { lane: { ticket: this.laneTicket, ...(s.ctx.adoptLane ? { skipsServer: true } : {}) } } : {}),
      }),
    });
    const early = this.early;
    this.early = [];
    for (const e of early) this.onFrame(e);
  }

  private offerLane(): boolean {
    const tickets = this.opts.laneTickets;
    if (!tickets) return false;
    this.laneTicket = randomBytes(16).toString('hex');
    tickets.set(this.laneTicket, this);
    return true;
  }

  /** Closes at once without waiting for the peer to read (server shutdown). */
  terminate(): void {
    this.close();
    this.conn.destroy();
  }

  /** Ends the connection and everything it holds. Idempotent. */
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.clearHelloTimer();
    this.early = [];
    this.pendingLease?.cancel();
    this.pendingLease = null;
    if (this.laneTicket) this.opts.laneTickets?.delete(this.laneTicket);
    this.laneTicket = null;
    if (this.laneOwner) {
      // A lane that goes away takes its session with it (Lane.fail); one that the server ends just closes.
      const owner = this.laneOwner;
      this.laneOwner = null;
      owner.session?.lane?.fail('the data lane closed');
    }
    const s = this.session;
    if (s) {
      this.session = null;
      s.lane?.fail('the session ended');
      try {
        s.destroy();
      } catch (e) {
        this.opts.log?.(`${this.id}: freeing the context failed: ${(e as Error).message}`);
      }
      this.env.cache.dropSession(s.id);
      this.env.pool.release(s.lease);
      this.opts.onSession?.('end', s);
    }
    this.conn.end();
  }
}
