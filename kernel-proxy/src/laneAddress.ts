// The data lane (LANE_ATTACH in ops.yaml) lets the intercept send and receive the payloads of large copies
// straight to the pool, skipping this proxy's relay, which costs half of loopback bandwidth. The pool only
// issues the ticket; where to dial is ours to say, since only the proxy knows the address it reached the
// pool at (a NAT or an SSH tunnel makes the pool's own idea of it useless), or the Unix socket it dialled
// for a pool on this machine. Over TLS there is no lane: the intercept speaks no TLS, and copies must not
// leave in the clear.
import type * as net from 'node:net';
import { Unpackr, pack } from 'msgpackr';
import { dialedPath } from './poolUrl';

/** Integers above 2^53 (and every u64 field) must survive a decode/encode round trip bit for bit. */
const exact = new Unpackr({ int64AsType: 'bigint', mapsAsObjects: true });

/** A TCP address, or the Unix socket of a pool on this machine (the embedded server). */
export type LaneAddress = { host: string; port: number } | { path: string };

/** Where the intercept should dial the lane: the address this pool connection actually reached. */
export function laneAddressOf(pool: net.Socket): LaneAddress | null {
  if ((pool as { encrypted?: boolean }).encrypted) return null;
  const path = dialedPath(pool);
  if (path) return { path };
  const host = pool.remoteAddress;
  const port = pool.remotePort;
  return host && port ? { host, port } : null;
}

/**
 * A successful HELLO reply body with `lane.host`/`lane.port` filled in, or the lane offer removed when
 * there is no usable address. Returns null when the body has no lane offer (it is then forwarded as is).
 */
export function completeLaneOffer(body: Buffer, addr: LaneAddress | null): Buffer | null {
  const v = exact.unpack(body) as Record<string, unknown> | null;
  if (!v || typeof v !== 'object' || !v.lane || typeof v.lane !== 'object') return null;
  if (addr) v.lane = { ...(v.lane as object), ...addr };
  else delete v.lane;
  return pack(v);
}
