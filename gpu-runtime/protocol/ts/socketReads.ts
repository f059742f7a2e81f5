// Reading a socket into buffers we choose instead of one fresh buffer per read. Node allocates a new 64 KiB
// buffer for every read by default; during a bulk copy on this VM those allocations and the major GCs they
// set off cost the server about twice the kernel's own receive work (0.7-2.5 ms/MB against 0.3-0.4 ms/MB
// with a reused buffer, measured with bench/src/copyBench.ts). Shared by the server and the kernel-proxy.
import { Socket } from 'node:net';

/** Node's net.Socket internals used here (absent on other socket kinds). */
interface SocketInternals {
  _handle?: { useUserBuffer?: unknown } | null;
  encrypted?: boolean;
}

/**
 * Moves a connected plain socket's handle to a new net.Socket that reads through `onread` (which
 * net.Server offers no way to ask for on accepted sockets): `buffer()` names where each next read lands and
 * `callback(n, buf)` gets the bytes, which are only valid until it returns unless buffer() then hands out
 * another buffer. The old socket is closed without its handle, which only releases its server's count of
 * it. Returns null, and leaves the socket alone, when it cannot be done: TLS, a socket with data already
 * read or 'data' listeners, a runtime without the API. Call it before anything is read from the socket.
 */
export function readIntoOwnBuffers(socket: Socket, buffer: () => Buffer, callback: (n: number, buf: Buffer) => void): Socket | null {
  const raw = socket as unknown as SocketInternals;
  const handle = raw._handle;
  if (raw.encrypted || !handle || typeof handle.useUserBuffer !== 'function' || socket.readableLength > 0 || socket.listenerCount('data') > 0) return null;
  const own = new Socket({ handle: handle as never, allowHalfOpen: socket.allowHalfOpen, onread: { buffer, callback } } as never);
  raw._handle = null;
  socket.destroy();
  return own;
}
