// MEM_* and MEMCPY*: every address range is checked against the session's own allocations before the
// backend sees it, so a session can neither read nor write memory it does not own.
import { CudaError, CUresult } from '../backend';
import { MAX_FRAME, HEADER_SIZE } from '../../../protocol/generated/ops';
import {
  decodeMemAllocArgs,
  decodeMemFreeArgs,
  decodeMemcpyDtoh2dArgs,
  decodeMemcpyDtohArgs,
  decodeMemcpyDtod2dArgs,
  decodeMemcpyDtodArgs,
  decodeMemcpyHtod2dArgs,
  decodeMemcpyHtodArgs,
  decodeMemsetArgs,
} from '../../../protocol/generated/ops';
import { syncReply, type HandlerTable } from '../handler';

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
    s.ctx.enqueueWrite(s.stream(f.stream), dst, f.bulk);
  },

  MEMCPY_DTOH(f, s) {
    const { src, size } = decodeMemcpyDtohArgs(f.body);
    checkReadSize(size);
    s.checkRange(src, size, 'MEMCPY_DTOH source');
    const out = Buffer.allocUnsafe(size);
    return syncReply(s, s.ctx.enqueueRead(s.stream(f.stream), src, out), { bulk: out });
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
    const size = a.width * a.height;
    checkReadSize(size);
    s.checkRange2D(a.src, a.spitch, a.width, a.height, 'MEMCPY_DTOH_2D source');
    if (size === 0) return syncReply(s, Promise.resolve());
    const out = Buffer.allocUnsafe(size);
    return syncReply(s, s.ctx.enqueueRead2D(s.stream(f.stream), a.src, a.spitch, out, a.width, a.height), { bulk: out });
  },

  MEMCPY_DTOD_2D(f, s) {
    const a = decodeMemcpyDtod2dArgs(f.body);
    s.checkRange2D(a.dst, a.dpitch, a.width, a.height, 'MEMCPY_DTOD_2D destination');
    s.checkRange2D(a.src, a.spitch, a.width, a.height, 'MEMCPY_DTOD_2D source');
    if (a.width === 0 || a.height === 0) return;
    s.ctx.enqueueCopy2D(s.stream(f.stream), a.dst, a.dpitch, a.src, a.spitch, a.width, a.height);
  },
};
