// What a data-lane write request announces (LANE_ATTACH in ops.yaml): the server needs it to take the bytes
// off the lane, the kernel-proxy to count bytes it never sees. One reading of the two request layouts.
import { decodeMemcpyHtod2dLaneArgs, decodeMemcpyHtodLaneArgs, MemcpyHtod2dLaneArgsSize, MemcpyHtodLaneArgsSize, Op } from '../generated/ops';

export interface LaneWrite {
  dst: number;
  /** Bytes that follow on the lane: `size`, or `width * height` packed rows. */
  bytes: number;
}

/** A MEMCPY_HTOD_LANE / MEMCPY_HTOD_2D_LANE request's announcement; null for another op or a malformed body. */
export function laneWriteOf(op: number, body: Buffer): LaneWrite | null {
  if (op === Op.MEMCPY_HTOD_LANE && body.length === MemcpyHtodLaneArgsSize) {
    const a = decodeMemcpyHtodLaneArgs(body);
    return { dst: a.dst, bytes: a.size };
  }
  if (op === Op.MEMCPY_HTOD_2D_LANE && body.length === MemcpyHtod2dLaneArgsSize) {
    const a = decodeMemcpyHtod2dLaneArgs(body);
    return { dst: a.dst, bytes: a.width * a.height };
  }
  return null;
}
