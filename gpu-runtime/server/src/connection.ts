// A framed socket: decodes incoming frames and writes outgoing ones corked, so that everything produced in
// one turn of the event loop (all replies to one read, all replies resolved together) leaves in one
// writev: one write per tiny frame costs the receiver 4-7 us per frame (transport-limits.md N11/N12).
import type { Socket } from 'node:net';
import { encodeFrame, FrameDecoder, ProtocolError, type EncodeOptions, type Frame } from '../../protocol/ts/codec';

/** Stop reading while this much is waiting to be written: a client that does not read stalls itself. */
const WRITE_HIGH_WATER = 64 * 2 ** 20;

export interface ConnectionHooks {
  onFrame(f: Frame): void;
  /** Framing is lost: the connection sends an error frame and closes. */
  onProtocolError(e: ProtocolError): void;
  onClose(): void;
  bytesIn?(n: number): void;
  bytesOut?(n: number): void;
}

export class FrameConnection {
  private readonly decoder: FrameDecoder;
  private corked = false;
  private closed = false;
  private pausedForWrites = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  constructor(
    readonly socket: Socket,
    private readonly hooks: ConnectionHooks,
    maxFrame?: number,
  ) {
    this.decoder = new FrameDecoder(maxFrame);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      if (this.pausedForWrites) {
        this.pausedForWrites = false;
        socket.resume();
      }
    });
    socket.on('error', () => {}); // 'close' follows; a reset peer is not a server error
    socket.on('close', () => {
      this.closed = true;
      this.hooks.onClose();
    });
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
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (e) {
      if (e instanceof ProtocolError) {
        this.socket.pause();
        this.hooks.onProtocolError(e);
        return;
      }
      throw e;
    }
    for (let i = 0; i < frames.length && !this.closed; i++) this.hooks.onFrame(frames[i]);
  }

  send(op: number, o: EncodeOptions): void {
    if (this.isClosed) return;
    const parts = encodeFrame(op, o);
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    let n = 0;
    for (const p of parts) {
      n += p.length;
      this.socket.write(p);
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

