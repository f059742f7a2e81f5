// A session's data lane (LANE_ATTACH in ops.yaml): a second plain-TCP connection that carries only the
// payloads of large copies, so that a client behind a kernel-proxy sends and receives them without the
// proxy's extra hop (its Node relay halves loopback bandwidth; docs/architecture.md). The lane is a raw
// byte stream in each direction; what the bytes mean comes from the session's own connection, in order:
// each MEMCPY_HTOD_LANE frame announces the next `size` bytes coming in, each MEMCPY_DTOH_LANE reply the
// next bytes going out.
import type { Socket } from 'node:net';

/** Where raw reads of a lane go instead of the frame decoder (see FrameConnection.becomeRaw). */
export interface RawReader {
  /** The buffer the next read lands in. */
  buffer(): Buffer;
  /** `n` bytes were read into `buf` (which is what buffer() returned, unless the socket reads on its own). */
  read(n: number, buf: Buffer): void;
  closed(): void;
}

/**
 * Bytes read ahead of their MEMCPY_HTOD_LANE frame kept before the lane stops reading (only before the first
 * copy, or from a socket that reads into buffers of its own; see complete()).
 */
const MAX_STAGED = 8 << 20;
const SPARE_SIZE = 256 * 1024;

interface Incoming {
  target: Buffer;
  got: number;
  resolve(): void;
  reject(e: Error): void;
}

export class Lane implements RawReader {
  private cur: Incoming | null = null;
  /** The view of `cur.target` handed to the last read. */
  private view: Buffer | null = null;
  /** Bytes that arrived before the frame announcing them was dispatched (the two sockets race). */
  private staged: Buffer[] = [];
  private stagedBytes = 0;
  private spare: Buffer | null = null;
  private paused = false;
  private lost: Error | null = null;
  bytesIn = 0;
  bytesOut = 0;
  private socket!: Socket;

  constructor(private readonly onLost: (why: string) => void) {}

  /**
   * The socket the lane reads and writes. Separate from the constructor because a socket that reads into our
   * buffers asks for the first one (buffer()) while it is being made.
   */
  bind(socket: Socket): this {
    this.socket = socket;
    return this;
  }

  get isLost(): boolean {
    return this.lost !== null;
  }

  /**
   * Resolves once the next target.length bytes of the lane are in `target`. One at a time: the session's
   * connection is held until it resolves, so no second expect() can start before.
   */
  expect(target: Buffer): Promise<void> {
    if (this.lost) return Promise.reject(this.lost);
    if (this.cur) return Promise.reject(new Error('a lane read is already in progress'));
    return new Promise<void>((resolve, reject) => {
      const cur: Incoming = { target, got: 0, resolve, reject };
      this.cur = cur;
      while (this.staged.length && cur.got < target.length) {
        const b = this.staged[0];
        const n = b.copy(target, cur.got);
        cur.got += n;
        this.stagedBytes -= n;
        if (n === b.length) this.staged.shift();
        else this.staged[0] = b.subarray(n);
      }
      if (cur.got === target.length) this.complete();
      if (this.paused && this.stagedBytes < MAX_STAGED) {
        this.paused = false;
        this.socket.resume();
      }
    });
  }

  /** Sends a reply's payload; `written` runs once the kernel has it (the view it came from may then change). */
  send(bytes: Buffer, written?: (err?: Error | null) => void): void {
    if (this.lost) {
      written?.(this.lost);
      return;
    }
    this.bytesOut += bytes.length;
    this.socket.write(bytes, written);
  }

  // --- RawReader --------------------------------------------------------------------------------------

  buffer(): Buffer {
    const cur = this.cur;
    if (cur) return (this.view = cur.target.subarray(cur.got));
    this.view = null;
    return (this.spare ??= Buffer.allocUnsafe(SPARE_SIZE));
  }

  read(n: number, buf: Buffer): void {
    if (this.lost || n <= 0) return;
    this.bytesIn += n;
    const cur = this.cur;
    if (cur && buf === this.view) cur.got += n;
    else {
      let chunk = buf.subarray(0, n);
      if (cur) {
        const k = chunk.copy(cur.target, cur.got);
        cur.got += k;
        chunk = chunk.subarray(k);
      }
      if (chunk.length) this.stage(chunk);
    }
    if (cur && cur.got === cur.target.length) this.complete();
  }

  closed(): void {
    this.fail('the data lane closed');
  }

  // ---------------------------------------------------------------------------------------------------

  private stage(chunk: Buffer): void {
    this.staged.push(Buffer.from(chunk));
    this.stagedBytes += chunk.length;
    if (this.stagedBytes >= MAX_STAGED && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  /**
   * The read that filled a target was given exactly its remaining bytes, so nothing of the next copy has
   * been read yet: stop reading until its frame asks (expect), which keeps those bytes in the kernel instead
   * of staging them in a copy.
   */
  private complete(): void {
    const cur = this.cur!;
    this.cur = null;
    this.view = null;
    if (!this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    cur.resolve();
  }

  /** The lane is gone: the session can no longer tell which bytes are whose, so it ends too. */
  fail(why: string): void {
    if (this.lost) return;
    this.lost = new Error(why);
    const cur = this.cur;
    this.cur = null;
    this.staged = [];
    cur?.reject(this.lost);
    this.socket.destroy();
    this.onLost(why);
  }
}
