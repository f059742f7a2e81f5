// Finds frame boundaries in a byte stream without copying it, so the forwarder can pass each received
// chunk on whole (one write per read) while still seeing every header. Hand-written instead of using the
// codec's FrameDecoder because that one assembles whole frames, and the proxy must not touch bulk bytes.
import { HEADER_SIZE, MAX_BODY, MAX_FRAME } from '../../gpu-runtime/protocol/generated/ops';
import { ProtocolError } from '../../gpu-runtime/protocol/ts/codec';

export interface FrameSink {
  /**
   * Called once per frame header (frame = HEADER_SIZE + length bytes). Return true to also receive the
   * frame's body through onBody (only for rare control frames: the body is then copied).
   */
  onHeader(op: number, flags: number, seq: number, length: number, bodyLen: number, result: number): boolean;
  onBody(op: number, flags: number, seq: number, result: number, body: Buffer): void;
}

export class FrameScanner {
  private readonly hdr = Buffer.allocUnsafe(HEADER_SIZE);
  private hdrFill = 0;
  /** Payload bytes of the current frame not yet seen. */
  private remaining = 0;
  private body: Buffer | null = null;
  private bodyFill = 0;
  private bodyOp = 0;
  private bodyFlags = 0;
  private bodySeq = 0;
  private bodyResult = 0;

  constructor(private readonly sink: FrameSink, private readonly maxFrame = MAX_FRAME) {}

  /** True between frames: nothing of a partial frame is pending. */
  get atBoundary(): boolean {
    return this.remaining === 0 && this.hdrFill === 0;
  }

  /** Scans a chunk; throws ProtocolError on a header that breaks the limits (framing is then lost). */
  scan(chunk: Buffer): void {
    const n = chunk.length;
    let o = 0;
    while (o < n) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, n - o);
        if (this.body) this.fillBody(chunk, o, take);
        this.remaining -= take;
        o += take;
        continue;
      }
      let src: Buffer;
      let at: number;
      if (this.hdrFill === 0 && n - o >= HEADER_SIZE) {
        src = chunk;
        at = o;
        o += HEADER_SIZE;
      } else {
        const take = Math.min(HEADER_SIZE - this.hdrFill, n - o);
        chunk.copy(this.hdr, this.hdrFill, o, o + take);
        this.hdrFill += take;
        o += take;
        if (this.hdrFill < HEADER_SIZE) break;
        this.hdrFill = 0;
        src = this.hdr;
        at = 0;
      }
      this.header(src, at);
    }
  }

  private header(b: Buffer, o: number): void {
    const length = b.readUInt32LE(o);
    const op = b.readUInt16LE(o + 4);
    const flags = b.readUInt16LE(o + 6);
    const seq = b.readUInt32LE(o + 8);
    const bodyLen = b.readUInt32LE(o + 16);
    const result = b.readInt32LE(o + 20);
    if (length > this.maxFrame) throw new ProtocolError('RGPU_ERR_FRAME_TOO_LARGE', `frame of ${length} bytes exceeds the limit of ${this.maxFrame}`, seq);
    if (bodyLen > length) throw new ProtocolError('RGPU_ERR_BAD_HEADER', `body length ${bodyLen} exceeds frame length ${length}`, seq);
    if (bodyLen > MAX_BODY) throw new ProtocolError('RGPU_ERR_BODY_TOO_LARGE', `body of ${bodyLen} bytes exceeds the limit of ${MAX_BODY}`, seq);
    this.remaining = length;
    if (!this.sink.onHeader(op, flags, seq, length, bodyLen, result)) return;
    if (bodyLen === 0) {
      this.sink.onBody(op, flags, seq, result, EMPTY);
      return;
    }
    this.body = Buffer.allocUnsafe(bodyLen);
    this.bodyFill = 0;
    this.bodyOp = op;
    this.bodyFlags = flags;
    this.bodySeq = seq;
    this.bodyResult = result;
  }

  private fillBody(chunk: Buffer, o: number, avail: number): void {
    const body = this.body!;
    const take = Math.min(avail, body.length - this.bodyFill);
    if (take > 0) {
      chunk.copy(body, this.bodyFill, o, o + take);
      this.bodyFill += take;
    }
    if (this.bodyFill === body.length) {
      this.body = null;
      this.sink.onBody(this.bodyOp, this.bodyFlags, this.bodySeq, this.bodyResult, body);
    }
  }
}

const EMPTY = Buffer.alloc(0);
