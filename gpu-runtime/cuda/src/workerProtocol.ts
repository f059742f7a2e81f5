// The compact protocol between the server and a CUDA session's worker process (workerBackend.ts <-> worker.ts).
// Frames are the client protocol's (protocol/ts/codec: 24-byte header, body, bulk) with op ids of their own:
// one op per DeviceContext method. Numbers travel as float64 in the body (device addresses are below 2^53);
// streams, events and modules are u32 ids the server side mints, with stream 0 the context's default stream.
//
// Requests: `flags & WANT_REPLY` for calls whose result the server waits for. A failing call without a reply
// becomes the worker's pending error, returned by its next reply that synchronises (as the driver does with
// asynchronous errors). Replies: `result` is the CUresult, the body an error message or the value,
// `stream` the context's sticky error, and `flags & MARKED` says that a printf marker was written to the
// worker's stdout just before this reply (see PrintfSplitter).

export const W = {
  INIT: 1,
  CREATE: 2,
  ALLOC: 3,
  FREE: 4,
  WRITE: 5,
  READ: 6,
  COPY: 7,
  WRITE_2D: 8,
  READ_2D: 9,
  COPY_2D: 10,
  MEMSET: 11,
  LOAD: 12,
  UNLOAD: 13,
  SET_ATTR: 14,
  LAUNCH: 15,
  STREAM_CREATE: 16,
  STREAM_DESTROY: 17,
  SYNC: 18,
  QUERY: 19,
  EVENT_CREATE: 20,
  EVENT_DESTROY: 21,
  EVENT_RECORD: 22,
  WAIT_EVENT: 23,
  EVENT_SYNC: 24,
  EVENT_QUERY: 25,
  ELAPSED: 26,
  DESTROY: 27,
  /** The session's data lane (its socket arrives separately, on the IPC channel): [dst, dpitch, width, height] */
  LANE_WRITE: 28,
  /** [size]: the next lane bytes belong to a copy the server refused */
  LANE_SKIP: 29,
  /** [src, spitch, width, height]: write the rows on the lane, then reply */
  LANE_READ: 30,
  /** [limit, value]: cuCtxSetLimit */
  SET_LIMIT: 31,
} as const;

export const WFlag = { WANT_REPLY: 1, MARKED: 2 } as const;

/** Replies after which the driver has flushed device printf (synchronisation, module load): marked ones. */
export const MARKED_OPS: ReadonlySet<number> = new Set([W.READ, W.READ_2D, W.LANE_READ, W.SYNC, W.EVENT_SYNC, W.LOAD, W.DESTROY]);

/** The printf marker of a worker given `nonce` (hex, on its command line: argv cannot carry the NULs). */
export const printfMarker = (nonce: string): string => `\0rgpu-sync-${nonce}\0`;

/** The fd of the worker's frame pipe (0-2 are stdin, the printf pipe, stderr). */
export const WORKER_FD = 3;

/**
 * Splits a worker's stdout into the printf text before each marker. The marker carries a per-worker random
 * nonce between NULs, so device printf text cannot fake one by accident. Text is decoded as UTF-8 across
 * chunk boundaries; a partial marker at the end of a chunk waits for the next.
 */
export class PrintfSplitter {
  private pending = '';
  private readonly decoder = new TextDecoder('utf-8');
  /** Markers seen so far. */
  markers = 0;

  constructor(
    readonly marker: string,
    /** Text that preceded a marker, or text flushed early (see MAX_PENDING). */
    private readonly onText: (text: string) => void,
    /** Called after each marker, once its text was given to onText. */
    private readonly onMarker: () => void,
  ) {}

  /** A session printing without ever synchronising must not grow the server's memory without bound. */
  static readonly MAX_PENDING = 1 << 20;

  push(chunk: Uint8Array): void {
    this.pending += this.decoder.decode(chunk, { stream: true });
    for (;;) {
      const i = this.pending.indexOf(this.marker);
      if (i < 0) break;
      if (i > 0) this.onText(this.pending.slice(0, i));
      this.pending = this.pending.slice(i + this.marker.length);
      this.markers++;
      this.onMarker();
    }
    if (this.pending.length > PrintfSplitter.MAX_PENDING) {
      // Keep what could be the start of a marker.
      const keep = this.marker.length - 1;
      this.onText(this.pending.slice(0, this.pending.length - keep));
      this.pending = this.pending.slice(this.pending.length - keep);
    }
  }
}
