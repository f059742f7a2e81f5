// A framed socket: decodes incoming frames and writes outgoing ones corked, so that everything produced in
// one turn of the event loop (all replies to one read, all replies resolved together) leaves in one
// writev: one write per tiny frame costs the receiver 4-7 us per frame (transport-limits.md N11/N12).
import type { Socket } from 'node:net';
import { encodeFrame, FrameDecoder, ProtocolError, type BulkPlacer, type EncodeOptions, type Frame } from '../../protocol/ts/codec';
import { readIntoOwnBuffers } from '../../protocol/ts/socketReads';
import type { RawReader } from './lane';

/** Stop reading while this much is waiting to be written: a client that does not read stalls itself. */
const WRITE_HIGH_WATER = 64 * 2 ** 20;

/** The reusable buffer a plain TCP connection reads into (see socketReads.ts for why). */
const READ_BUFFER = 64 * 1024;

export interface ConnectionHooks {
  onFrame(f: Frame): void;
  /** Framing is lost: the connection sends an error frame and closes. */
  onProtocolError(e: ProtocolError): void;
  onClose(): void;
  /** Where large bulks may land as they arrive (never asked while frames are held). */
  placeBulk?: BulkPlacer;
  bytesIn?(n: number): void;
  bytesOut?(n: number): void;
}

export class FrameConnection {
  readonly socket: Socket;
  private readonly decoder: FrameDecoder;
  /** Runs after each read (the client's pre-HELLO byte cap); 'data' events do not fire on every socket. */
  onRead: (() => void) | null = null;
  private readBuf: Buffer | null = null;
  /** Set once the connection is a data lane: reads bypass the decoder. */
  private raw: RawReader | null = null;
  private corked = false;
  private closed = false;
  private pausedForWrites = false;
  /** While held, decoded frames wait here instead of running (see hold()). */
  private held = false;
  private heldFrames: Frame[] = [];
  private heldBytes = 0;
  private pausedForHold = false;
  private readonly deliver = (f: Frame): void => {
    if (this.closed) return;
    if (this.raw) return this.destroy();
    if (!this.held) {
      this.hooks.onFrame(f);
      return;
    }
    this.heldFrames.push(f);
    this.heldBytes += f.length;
    if (!this.pausedForHold && this.heldBytes > WRITE_HIGH_WATER) {
      this.pausedForHold = true;
      this.socket.pause();
    }
  };
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  constructor(
    socket: Socket,
    private readonly hooks: ConnectionHooks,
    maxFrame?: number,
  ) {
    const place = hooks.placeBulk;
    this.decoder = new FrameDecoder(maxFrame, place ? (h, body) => (this.held || this.closed ? null : place(h, body)) : null);
    const own = readIntoOwnBuffers(socket, this.nextReadBuffer, this.onRead_);
    this.socket = socket = own ?? socket;
    if (!own) socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.setNoDelay(true);
    socket.on('drain', () => {
      if (this.pausedForWrites) {
        this.pausedForWrites = false;
        if (!this.pausedForHold) socket.resume();
      }
    });
    socket.on('error', () => {}); // 'close' follows; a reset peer is not a server error
    socket.on('close', () => {
      this.closed = true;
      this.raw?.closed();
      this.hooks.onClose();
    });
  }

  /**
   * From now on every byte read goes to `reader` instead of the frame decoder (a data lane after its
   * LANE_ATTACH). Bytes the client sent behind that frame, before its reply, have no owner: the connection
   * then closes (see afterRead).
   */
  becomeRaw(reader: RawReader): void {
    this.raw = reader;
  }

  private afterRead(): void {
    if (this.raw && this.decoder.pendingBytes > 0) this.destroy();
    this.onRead?.();
  }

  get isClosed(): boolean {
    return this.closed || this.socket.destroyed;
  }

  /** Bytes of a partial frame held by the decoder. */
  get pendingBytes(): number {
    return this.decoder.pendingBytes;
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.hooks.bytesIn?.(chunk.length);
    if (this.raw) return this.raw.read(chunk.length, chunk);
    try {
      this.decoder.feed(chunk, this.deliver);
    } catch (e) {
      this.protocolError(e);
    }
    this.afterRead();
  }

  /**
   * Where the next read lands: straight into the device memory a bulk is being placed in (the kernel's
   * copy is then the only one), else our reusable buffer, which the decoder never keeps views of.
   */
  private readonly nextReadBuffer = (): Buffer => {
    if (this.raw) return this.raw.buffer();
    const t = this.decoder.placeTarget;
    if (t && t.length) return t;
    return (this.readBuf ??= Buffer.allocUnsafe(READ_BUFFER));
  };

  private readonly onRead_ = (n: number, buf: Buffer): void => {
    if (this.closed) return;
    this.hooks.bytesIn?.(n);
    if (this.raw) return this.raw.read(n, buf);
    try {
      if (buf === this.readBuf) this.decoder.feedTransient(buf.subarray(0, n), this.deliver);
      else this.decoder.placed(n, this.deliver);
    } catch (e) {
      this.protocolError(e);
    }
    this.afterRead();
  };

  private protocolError(e: unknown): void {
    if (!(e instanceof ProtocolError)) throw e;
    this.socket.pause();
    this.hooks.onProtocolError(e);
  }

  /**
   * Stops running frames until release(): a reply that carries a live view of device memory must reach
   * the kernel before any later op may change that memory. Frames keep being decoded and queue in order.
   */
  hold(): void {
    this.held = true;
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    while (!this.held && !this.closed && this.heldFrames.length) {
      const f = this.heldFrames.shift()!;
      this.heldBytes -= f.length;
      this.hooks.onFrame(f);
    }
    if (this.pausedForHold && !this.held) {
      this.pausedForHold = false;
      if (!this.pausedForWrites && !this.closed) this.socket.resume();
    }
  }

  /** `written` runs once the frame has been handed to the kernel (or the socket failed). */
  send(op: number, o: EncodeOptions, written?: (err?: Error | null) => void): void {
    if (this.isClosed) return;
    const parts = encodeFrame(op, o);
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    let n = 0;
    for (let i = 0; i < parts.length; i++) {
      n += parts[i].length;
      if (written && i === parts.length - 1) this.socket.write(parts[i], written);
      else this.socket.write(parts[i]);
    }
    this.hooks.bytesOut?.(n);
    if (!this.pausedForWrites && this.socket.writableLength > WRITE_HIGH_WATER) {
      this.pausedForWrites = true;
      this.socket.pause();
    }
  }

  /** Flushes what is written, then closes; destroys after a grace period if the peer does not read. */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

