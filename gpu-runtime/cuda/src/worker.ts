// A CUDA session's worker process: owns ONE context on a real GPU and runs the calls the server sends over fd 3
// (workerProtocol.ts). Why a process per session: the driver writes device printf to the process's stdout at
// synchronisation points, so only a process of its own makes that text this session's (the server reads our
// stdout through a pipe); and a crash in libcuda or a user kernel that kills this process ends this session only.
//
// stdout (fd 1) belongs to the driver's printf and our markers: nothing else may write there, and
// process.stdout is never touched (opening it as a stream would make fd 1 non-blocking under the driver).
//
// argv: [library path, printf marker nonce].

import { writeSync } from 'node:fs';
import { Socket } from 'node:net';
import koffi from 'koffi';
import { pack } from 'msgpackr';
import { encodeFrame, FrameDecoder, type Frame } from '../../protocol/ts/codec';
import { readIntoOwnBuffers } from '../../protocol/ts/socketReads';
import { CudaError, type BackendEvent, type BackendStream, type DeviceContext, type LaunchConfig } from '../../server/src/backend';
import { Lane } from '../../server/src/lane';
import { createCudaBackend } from './index';
import { MARKED_OPS, printfMarker, W, WFlag, WORKER_FD } from './workerProtocol';

const CUDA_ERROR_INVALID_VALUE = 1;
const CUDA_ERROR_NOT_INITIALIZED = 3;
const CUDA_ERROR_INVALID_HANDLE = 400;
const CUDA_ERROR_NOT_READY = 600;
const CUDA_ERROR_UNKNOWN = 999;

// Anything the process itself logs goes to stderr (the server's log), never to the printf pipe.
for (const k of ['log', 'info', 'debug'] as const) console[k] = console.error;

const [libraryPath, nonce] = process.argv.slice(2);
const markerBytes = Buffer.from(printfMarker(nonce ?? ''), 'latin1');
/** The driver flushes device printf through stdio; flush libc's buffer before our marker goes after it. */
const fflush = (() => {
  try {
    return koffi.load('libc.so.6').func('int fflush(void *)') as (f: null) => number;
  } catch {
    return () => 0;
  }
})();

const sock = new Socket({ fd: WORKER_FD, readable: true, writable: true });
const decoder = new FrameDecoder();
let ctx: DeviceContext | null = null;
const streams = new Map<number, BackendStream>([[0, null]]);
const events = new Map<number, BackendEvent>();
const modules = new Map<number, unknown>();
/** The first error of a call without a reply, returned by the next synchronising reply. */
let pendingError: CudaError | null = null;
const cfg: LaunchConfig = { grid: [1, 1, 1], block: [1, 1, 1], sharedMem: 0, params: new Uint8Array(0), cooperative: false };
// Device printf reaches us through the driver's stdout, not through onPrintf.
const noPrintf = (): void => {};

let corked = false;
const uncork = (): void => {
  corked = false;
  sock.uncork();
};
function send(op: number, seq: number, result: number, body?: Buffer, bulk?: Uint8Array): void {
  let flags = 0;
  if (MARKED_OPS.has(op)) {
    fflush(null);
    writeSync(1, markerBytes);
    flags |= WFlag.MARKED;
  }
  if (!corked) {
    corked = true;
    sock.cork();
    process.nextTick(uncork);
  }
  for (const p of encodeFrame(op, { seq, flags, result, stream: ctx?.stickyError ?? 0, body, bulk })) sock.write(p);
}

function codeOf(e: unknown): CudaError {
  if (e instanceof CudaError) return e;
  return new CudaError(CUDA_ERROR_UNKNOWN, (e as Error)?.message ?? String(e));
}

function replyError(f: Frame, e: unknown): void {
  const c = codeOf(e);
  send(f.op, f.seq, c.code, Buffer.from(c.message, 'utf8'));
}

/** A synchronising reply: the call's own error, else the pending one of an earlier call without a reply. */
function settle(f: Frame, p: Promise<unknown>, value: (v: unknown) => Uint8Array | undefined = () => undefined): void {
  p.then(
    (v) => {
      const pe = pendingError;
      pendingError = null;
      if (pe) replyError(f, pe);
      else send(f.op, f.seq, 0, undefined, value(v));
    },
    (e) => {
      pendingError = null;
      replyError(f, e);
    },
  );
}

const num = (f: Frame, i: number): number => f.body.readDoubleLE(8 * i);

function context(): DeviceContext {
  if (!ctx) throw new CudaError(CUDA_ERROR_NOT_INITIALIZED, 'no context in this worker');
  return ctx;
}
function stream(id: number): BackendStream {
  const s = streams.get(id);
  if (s === undefined) throw new CudaError(CUDA_ERROR_INVALID_HANDLE, `unknown stream ${id}`);
  return s;
}
function event(id: number): BackendEvent {
  const e = events.get(id);
  if (e === undefined) throw new CudaError(CUDA_ERROR_INVALID_HANDLE, `unknown event ${id}`);
  return e;
}
function module(id: number): unknown {
  const m = modules.get(id);
  if (m === undefined) throw new CudaError(CUDA_ERROR_INVALID_HANDLE, `unknown module ${id}`);
  return m;
}

let backend: ReturnType<typeof createCudaBackend> | null = null;

// --- the session's data lane ----------------------------------------------------------------------------
// Its socket comes from the server on the IPC channel (WorkerContext.adoptLane), possibly after the first
// call that needs it. Lane writes hold every later call until their bytes have landed: a launch behind one
// must see the data, as on the server's own lanes.

let lane: Lane | null = null;
const laneWaiters: ((l: Lane) => void)[] = [];

process.on('message', (m: unknown, handle: unknown) => {
  if (m !== 'lane' || !(handle instanceof Socket) || lane) return;
  // A lost lane leaves no way to tell whose bytes are whose: the session ends (the server sees us exit).
  const l = new Lane(() => destroyAndExit());
  const own = readIntoOwnBuffers(handle, () => l.buffer(), (n, b) => l.read(n, b));
  const s = own ?? handle;
  if (!own) s.on('data', (c: Buffer) => l.read(c.length, c));
  s.on('error', () => {});
  s.on('close', () => l.closed());
  lane = l.bind(s);
  for (const w of laneWaiters.splice(0)) w(l);
});
process.channel?.unref(); // the frame pipe, not the IPC channel, decides how long the worker lives

function laneReady(): Promise<Lane> {
  return lane ? Promise.resolve(lane) : new Promise((r) => laneWaiters.push(r));
}

const queued: Frame[] = [];
let busy = false;

/** Runs no further call until `p` settles; a lane that fails ends the worker. */
function holdUntil(p: Promise<void>): void {
  busy = true;
  p.then(
    () => {
      busy = false;
      while (!busy && queued.length) onFrame(queued.shift()!);
    },
    () => destroyAndExit(),
  );
}

/** The next width*height lane bytes, then the write: the bytes are taken even if the write is refused. */
function laneWrite(f: Frame): void {
  const [dst, dpitch, width, height] = [num(f, 0), num(f, 1), num(f, 2), num(f, 3)];
  const buf = Buffer.allocUnsafe(width * height);
  holdUntil(laneReady().then((l) => l.expect(buf)).then(() => {
    try {
      const s = stream(f.stream);
      if (height === 1 && dpitch === width) context().enqueueWrite(s, dst, buf);
      else context().enqueueWrite2D(s, dst, dpitch, buf, width, height);
    } catch (e) {
      pendingError ??= codeOf(e);
    }
  }));
}

/** Reads the rows, writes them on the lane, then replies; an error (this call's or a pending one) sends none. */
function laneRead(f: Frame, c: DeviceContext): void {
  const [src, spitch, width, height] = [num(f, 0), num(f, 1), num(f, 2), num(f, 3)];
  const out = Buffer.allocUnsafe(width * height);
  const s = stream(f.stream);
  const read = height === 1 && spitch === width ? c.enqueueRead(s, src, out) : c.enqueueRead2D(s, src, spitch, out, width, height);
  // settle() calls its value function only for a success reply, just before sending it: the lane bytes go first.
  settle(f, read.then(laneReady), (l) => {
    (l as Lane).send(out);
    return undefined;
  });
}

function run(f: Frame): void {
  const c = f.op === W.INIT || f.op === W.CREATE ? null : context();
  switch (f.op) {
    case W.INIT: {
      backend = createCudaBackend({ libraryPath });
      const infos = backend.devices.map((d) => ({ ...d.info, uuid: Buffer.from(d.info.uuid) }));
      return send(f.op, f.seq, 0, pack(infos));
    }
    case W.CREATE: {
      if (!backend) backend = createCudaBackend({ libraryPath });
      if (ctx) throw new CudaError(CUDA_ERROR_INVALID_VALUE, 'this worker already has a context');
      const d = backend.devices[num(f, 0)];
      if (!d) throw new CudaError(CUDA_ERROR_INVALID_VALUE, `no device ${num(f, 0)}`);
      ctx = d.createContext({ vaSize: num(f, 1) });
      return send(f.op, f.seq, 0, pack({ base: ctx.va.base, size: ctx.va.size }));
    }
    case W.ALLOC:
      return c!.alloc(num(f, 0), num(f, 1));
    case W.FREE:
      return c!.free(num(f, 0));
    case W.WRITE:
      return c!.enqueueWrite(stream(f.stream), num(f, 0), f.bulk);
    case W.READ: {
      const out = Buffer.allocUnsafe(num(f, 1));
      return settle(f, c!.enqueueRead(stream(f.stream), num(f, 0), out), () => out);
    }
    case W.COPY:
      return c!.enqueueCopy(stream(f.stream), num(f, 0), num(f, 1), num(f, 2));
    case W.WRITE_2D:
      return c!.enqueueWrite2D(stream(f.stream), num(f, 0), num(f, 1), f.bulk, num(f, 2), num(f, 3));
    case W.READ_2D: {
      const out = Buffer.allocUnsafe(num(f, 2) * num(f, 3));
      return settle(f, c!.enqueueRead2D(stream(f.stream), num(f, 0), num(f, 1), out, num(f, 2), num(f, 3)), () => out);
    }
    case W.COPY_2D:
      return c!.enqueueCopy2D(stream(f.stream), num(f, 0), num(f, 1), num(f, 2), num(f, 3), num(f, 4), num(f, 5));
    case W.MEMSET:
      return c!.enqueueMemset(stream(f.stream), num(f, 0), num(f, 1), num(f, 2) as 1 | 2 | 4, num(f, 3), num(f, 4), num(f, 5));
    case W.LOAD: {
      const kind = (['fatbin', 'ptx', 'cubin'] as const)[num(f, 1)];
      const loaded = c!.loadModule(f.bulk, kind, '');
      modules.set(num(f, 0), loaded.handle);
      return settle(f, Promise.resolve(), () => pack(loaded.info));
    }
    case W.UNLOAD: {
      const m = module(num(f, 0));
      modules.delete(num(f, 0));
      return c!.unloadModule(m);
    }
    case W.SET_ATTR:
      return c!.setKernelAttribute(module(num(f, 0)), num(f, 1), num(f, 2), num(f, 3));
    case W.SET_LIMIT:
      return c!.setLimit!(num(f, 0), num(f, 1));
    case W.LAUNCH: {
      cfg.grid[0] = num(f, 2); cfg.grid[1] = num(f, 3); cfg.grid[2] = num(f, 4);
      cfg.block[0] = num(f, 5); cfg.block[1] = num(f, 6); cfg.block[2] = num(f, 7);
      cfg.sharedMem = num(f, 8);
      cfg.cooperative = num(f, 9) !== 0;
      cfg.params = f.bulk;
      return c!.launch(stream(f.stream), module(num(f, 0)), num(f, 1), cfg, noPrintf);
    }
    case W.STREAM_CREATE:
      streams.set(num(f, 0), c!.createStream(num(f, 1), num(f, 2)));
      return;
    case W.STREAM_DESTROY: {
      const s = stream(num(f, 0));
      streams.delete(num(f, 0));
      return c!.destroyStream(s);
    }
    case W.SYNC:
      return settle(f, c!.synchronize(f.stream === 0xffffffff ? null : stream(f.stream)));
    case W.QUERY: {
      const idle = c!.query(f.stream === 0xffffffff ? null : stream(f.stream));
      return send(f.op, f.seq, idle ? 0 : CUDA_ERROR_NOT_READY);
    }
    case W.EVENT_CREATE:
      events.set(num(f, 0), c!.createEvent(num(f, 1)));
      return;
    case W.EVENT_DESTROY: {
      const e = event(num(f, 0));
      events.delete(num(f, 0));
      return c!.destroyEvent(e);
    }
    case W.EVENT_RECORD:
      return c!.recordEvent(event(num(f, 0)), stream(f.stream));
    case W.WAIT_EVENT:
      return c!.streamWaitEvent(stream(f.stream), event(num(f, 0)));
    case W.EVENT_SYNC:
      return settle(f, c!.synchronizeEvent(event(num(f, 0))));
    case W.EVENT_QUERY:
      return send(f.op, f.seq, c!.queryEvent(event(num(f, 0))) ? 0 : CUDA_ERROR_NOT_READY);
    case W.ELAPSED: {
      const b = Buffer.allocUnsafe(8);
      b.writeDoubleLE(c!.elapsed(event(num(f, 0)), event(num(f, 1))), 0);
      return send(f.op, f.seq, 0, b);
    }
    case W.LANE_WRITE:
      return laneWrite(f);
    case W.LANE_SKIP:
      return holdUntil(laneReady().then((l) => l.expect(Buffer.allocUnsafe(num(f, 0)))));
    case W.LANE_READ:
      return laneRead(f, c!);
    case W.DESTROY:
      destroyAndExit(f);
      return;
    default:
      throw new CudaError(CUDA_ERROR_INVALID_VALUE, `unknown worker op ${f.op}`);
  }
}

function destroyAndExit(f?: Frame): void {
  try {
    ctx?.destroy();
  } catch {
    // A broken context still ends with the process.
  }
  if (f) send(f.op, f.seq, 0);
  // Let the reply and the marker leave before going.
  sock.end(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}

function onFrame(f: Frame): void {
  if (busy) {
    queued.push(f);
    return;
  }
  try {
    run(f);
  } catch (e) {
    if (f.flags & WFlag.WANT_REPLY) replyError(f, e);
    else pendingError ??= codeOf(e);
  }
}

sock.on('data', (chunk: Buffer) => decoder.feed(chunk, onFrame));
// The server went away (or dropped the session): free the context and go.
sock.on('end', () => destroyAndExit());
sock.on('error', () => destroyAndExit());
