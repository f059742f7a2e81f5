// MEM_* and MEMCPY*: every address range is checked against the session's own allocations before the
// backend sees it, so a session can neither read nor write memory it does not own.
import { CudaError, CUresult } from '../backend';
import { MAX_FRAME, HEADER_SIZE, MemcpyHtodArgsSize, Op } from '../../../protocol/generated/ops';
import {
  decodeMemAllocArgs,
  decodeMemFreeArgs,
  decodeMemcpyDtoh2dArgs,
  decodeMemcpyDtohArgs,
  decodeMemcpyDtohLaneArgs,
  decodeMemcpyDtoh2dLaneArgs,
  decodeMemcpyHtod2dLaneArgs,
  decodeMemcpyHtodLaneArgs,
  encodeMemcpyDtohLaneReply,
  MemcpyDtohLaneReplySize,
  decodeMemcpyDtod2dArgs,
  decodeMemcpyDtodArgs,
  decodeMemcpyHtod2dArgs,
  decodeMemcpyHtodArgs,
  decodeMemsetArgs,
} from '../../../protocol/generated/ops';
import { Flag } from '../../../protocol/generated/ops';
import type { Frame, FrameHeader } from '../../../protocol/ts/codec';
import { syncReply, type HandlerTable, type Reply } from '../handler';
import type { Session } from '../session';

/**
 * Reads at least this large are answered from a view of device memory instead of a copy. The view holds
 * the session's later frames until the reply is written (connection.hold), which a small read would not
 * repay: a copy into a fresh buffer costs a page fault per 4 KiB on this VM, far more than the hold.
 */
const VIEW_MIN = 64 * 1024;

/**
 * The decoder's placer for MEMCPY_HTOD: where in device memory a large copy's bulk may be written as it
 * arrives, or null to take the ordinary path (which then reports any error). Runs after every earlier frame
 * of the session; no later frame can run before this one completes, so the checks made here still hold
 * when the frame is dispatched, and MEMCPY_HTOD then only confirms them.
 */
export function placeHtod(h: FrameHeader, body: Buffer, s: Session): Buffer | null {
  if (h.op !== Op.MEMCPY_HTOD || body.length !== MemcpyHtodArgsSize) return null;
  return placeLaneWrite(s, h.stream, decodeMemcpyHtodArgs(body).dst, h.length - h.bodyLen);
}

/** The same for the bytes of a MEMCPY_HTOD_LANE, which arrive on the data lane. */
export function placeLaneWrite(s: Session, stream: number, dst: number, n: number): Buffer | null {
  if (!s.ctx.hostView || s.sticky) return null;
  try {
    s.checkRange(dst, n, 'MEMCPY_HTOD destination');
    const v = s.ctx.hostView(s.stream(stream), dst, n);
    return v ? Buffer.from(v.buffer, v.byteOffset, v.length) : null;
  } catch {
    return null;
  }
}

/**
 * The reply of a 1D read: the bytes at [src, src+size) go in the reply's bulk or, for a lane read, on the data
 * lane. A large read is a view of device memory when the backend has one; the session's later frames then
 * wait until the reply is written (s.readHold), so there must be a reply.
 */
function readReply(f: Frame, s: Session, src: number, size: number, into: 'bulk' | 'lane', body?: Buffer): Promise<Reply | void> {
  const stream = s.stream(f.stream);
  if (size >= VIEW_MIN && s.ctx.hostView && (f.flags & Flag.NO_REPLY) === 0) {
    const v = s.ctx.hostView(stream, src, size);
    if (v) {
      s.readHold = f; // the client holds the connection's later frames until this reply is written
      return syncReply(s, Promise.resolve(), { body, [into]: Buffer.from(v.buffer, v.byteOffset, v.length) });
    }
  }
  const out = Buffer.allocUnsafe(size);
  return syncReply(s, s.ctx.enqueueRead(stream, src, out), { body, [into]: out });
}

/** The 2D read's reply: height rows of width bytes at spitch, packed, in the bulk or on the lane. */
function read2dReply(f: Frame, s: Session, src: number, spitch: number, width: number, height: number, into: 'bulk' | 'lane', body?: Buffer): Promise<Reply | void> {
  if (width * height === 0) return syncReply(s, Promise.resolve(), body && { body });
  const out = Buffer.allocUnsafe(width * height);
  return syncReply(s, s.ctx.enqueueRead2D(s.stream(f.stream), src, spitch, out, width, height), { body, [into]: out });
}

/** A lane read's reply body, after checking that there is a lane: how many bytes follow on it. */
function laneReplyBody(s: Session, op: string, size: number): Buffer {
  if (!s.lane && !s.remoteLane) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `${op}: the session has no data lane`);
  const body = Buffer.allocUnsafe(MemcpyDtohLaneReplySize);
  encodeMemcpyDtohLaneReply(body, 0, { laneBytes: size });
  return body;
}

/**
 * A lane read on a lane the context's process owns: that process writes the bytes, so the reply may not
 * turn into an error after it did. The deferred error is therefore taken first, and the read not made.
 */
function remoteLaneRead(s: Session, stream: number, src: number, spitch: number, width: number, height: number, body: Buffer): Promise<Reply> {
  const deferred = s.takeDeferred();
  if (deferred) throw deferred;
  return s.ctx.laneRead!(s.stream(stream), src, spitch, width, height).then(() => ({ body }));
}

/** A reply frame must fit the frame limit; larger reads are split by the client. */
const MAX_READ = MAX_FRAME - HEADER_SIZE;

function checkReadSize(size: number): void {
  if (size > MAX_READ) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `a read of ${size} bytes exceeds the ${MAX_READ}-byte frame limit; split it`);
}

export const memoryHandlers: HandlerTable = {
  MEM_ALLOC(f, s) {
    const a = decodeMemAllocArgs(f.body);
    s.alloc(a.addr, a.size);
  },

  MEM_FREE(f, s) {
    s.free(decodeMemFreeArgs(f.body).addr);
  },

  MEMCPY_HTOD(f, s) {
    const { dst } = decodeMemcpyHtodArgs(f.body);
    s.checkRange(dst, f.bulk.length, 'MEMCPY_HTOD destination');
    const stream = s.stream(f.stream);
    if (!f.placed) s.ctx.enqueueWrite(stream, dst, f.bulk); // else placeHtod wrote it as it arrived

  },

  MEMCPY_DTOH(f, s) {
    const { src, size } = decodeMemcpyDtohArgs(f.body);
    checkReadSize(size);
    s.checkRange(src, size, 'MEMCPY_DTOH source');
    return readReply(f, s, src, size, 'bulk');
  },

  // Lane writes reach a handler only when the lane belongs to the context's process (client.ts reads the
  // others itself and runs them as MEMCPY_HTOD / MEMCPY_HTOD_2D): the handler tells the context to take them.
  MEMCPY_HTOD_LANE(f, s) {
    const { dst, size } = decodeMemcpyHtodLaneArgs(f.body);
    s.checkRange(dst, size, 'MEMCPY_HTOD_LANE destination');
    s.ctx.laneWrite!(s.stream(f.stream), dst, size, size, 1);
    s.laneTaken = true;
  },

  MEMCPY_HTOD_2D_LANE(f, s) {
    const a = decodeMemcpyHtod2dLaneArgs(f.body);
    s.checkRange2D(a.dst, a.dpitch, a.width, a.height, 'MEMCPY_HTOD_2D_LANE destination');
    s.ctx.laneWrite!(s.stream(f.stream), a.dst, a.dpitch, a.width, a.height);
    s.laneTaken = true;
  },

  /** MEMCPY_DTOH with the bytes on the data lane (client.ts writes them ahead of the reply). */
  MEMCPY_DTOH_LANE(f, s) {
    const { src, size } = decodeMemcpyDtohLaneArgs(f.body);
    const body = laneReplyBody(s, 'MEMCPY_DTOH_LANE', size);
    checkReadSize(size);
    s.checkRange(src, size, 'MEMCPY_DTOH_LANE source');
    if (s.remoteLane) return remoteLaneRead(s, f.stream, src, size, size, 1, body);
    return readReply(f, s, src, size, 'lane', body);
  },

  MEMCPY_DTOD(f, s) {
    const { dst, src, size } = decodeMemcpyDtodArgs(f.body);
    s.checkRange(dst, size, 'MEMCPY_DTOD destination');
    s.checkRange(src, size, 'MEMCPY_DTOD source');
    s.ctx.enqueueCopy(s.stream(f.stream), dst, src, size);
  },

  MEMSET(f, s) {
    const a = decodeMemsetArgs(f.body);
    if (a.elemSize !== 1 && a.elemSize !== 2 && a.elemSize !== 4) {
      throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `MEMSET element size ${a.elemSize} (must be 1, 2 or 4)`);
    }
    s.checkRange2D(a.dst, a.pitch, a.width * a.elemSize, a.height, 'MEMSET destination');
    if (a.width === 0 || a.height === 0) return; // an empty 2D op must not walk 2^48 empty rows
    s.ctx.enqueueMemset(s.stream(f.stream), a.dst, a.value, a.elemSize, a.width, a.height, a.pitch);
  },

  MEMCPY_HTOD_2D(f, s) {
    const a = decodeMemcpyHtod2dArgs(f.body);
    if (a.width * a.height !== f.bulk.length) {
      throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `MEMCPY_HTOD_2D: ${f.bulk.length} bytes sent for ${a.height} rows of ${a.width}`);
    }
    s.checkRange2D(a.dst, a.dpitch, a.width, a.height, 'MEMCPY_HTOD_2D destination');
    if (a.width === 0 || a.height === 0) return;
    s.ctx.enqueueWrite2D(s.stream(f.stream), a.dst, a.dpitch, f.bulk, a.width, a.height);
  },

  MEMCPY_DTOH_2D(f, s) {
    const a = decodeMemcpyDtoh2dArgs(f.body);
    checkReadSize(a.width * a.height);
    s.checkRange2D(a.src, a.spitch, a.width, a.height, 'MEMCPY_DTOH_2D source');
    return read2dReply(f, s, a.src, a.spitch, a.width, a.height, 'bulk');
  },

  /** MEMCPY_DTOH_2D with the packed rows on the data lane. */
  MEMCPY_DTOH_2D_LANE(f, s) {
    const a = decodeMemcpyDtoh2dLaneArgs(f.body);
    const size = a.width * a.height;
    const body = laneReplyBody(s, 'MEMCPY_DTOH_2D_LANE', size);
    checkReadSize(size);
    s.checkRange2D(a.src, a.spitch, a.width, a.height, 'MEMCPY_DTOH_2D_LANE source');
    if (size > 0 && s.remoteLane) return remoteLaneRead(s, f.stream, a.src, a.spitch, a.width, a.height, body);
    return read2dReply(f, s, a.src, a.spitch, a.width, a.height, 'lane', body);
  },

  MEMCPY_DTOD_2D(f, s) {
    const a = decodeMemcpyDtod2dArgs(f.body);
    s.checkRange2D(a.dst, a.dpitch, a.width, a.height, 'MEMCPY_DTOD_2D destination');
    s.checkRange2D(a.src, a.spitch, a.width, a.height, 'MEMCPY_DTOD_2D source');
    if (a.width === 0 || a.height === 0) return;
    s.ctx.enqueueCopy2D(s.stream(f.stream), a.dst, a.dpitch, a.src, a.spitch, a.width, a.height);
  },
};
