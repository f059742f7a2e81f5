// The CUDA backend with one worker process per session (worker.ts): the server's default for --devices cuda.
// The server process never loads libcuda: the first worker enumerates the GPUs, and one initialised worker is
// kept spare so that a session does not wait for node, koffi and cuInit at HELLO.
//
// Device printf: each worker's stdout is a pipe read here. The worker writes a marker after the driver has
// flushed printf (at every synchronising reply), so the text before the k-th marker is exactly what the
// session printed up to its k-th synchronising reply; that reply is held until its marker has been read, and
// the text goes to the session's onPrintf first, so the client gets PRINTF notifications before the reply.
//
// The calls that return a value at once in DeviceContext (loadModule, query, queryEvent, elapsed) need a round
// trip to the worker: they come as the optional *Async variants, and the sync ones throw NOT_SUPPORTED.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { unpack } from 'msgpackr';
import { encodeFrame, FrameDecoder, writeHeader, type Frame } from '../../protocol/ts/codec';
import { HEADER_SIZE } from '../../protocol/generated/ops';
import { CudaError, type Backend, type BackendEvent, type BackendStream, type Device, type DeviceContext, type DeviceInfo, type LaunchConfig, type ModuleInfo } from '../../server/src/backend';
import { poolType } from './backend';
import { PrintfSplitter, printfMarker, W, WFlag, WORKER_FD } from './workerProtocol';

const CUDA_ERROR_NOT_SUPPORTED = 801;
const CUDA_ERROR_NOT_READY = 600;
/** What a session sees once its worker process has died: the context is gone for good (sticky). */
export const WORKER_DIED = 719; // CUDA_ERROR_LAUNCH_FAILED
const KINDS = { fatbin: 0, ptx: 1, cubin: 2 } as const;
const WHOLE_CONTEXT = 0xffffffff;
/** Bulks up to this size are copied into the request frame; larger ones are written from the caller's buffer. */
const SMALL_BULK = 64 * 1024;
/** A worker that does not exit this long after its context was destroyed is killed. */
const EXIT_GRACE_MS = 10_000;

const WORKER_SCRIPT = join(__dirname, 'worker.js');

interface Waiter {
  resolve(f: Frame): void;
  reject(e: Error): void;
  /** Where a large reply bulk (a device-to-host copy) lands as it arrives, saving a copy. */
  dst?: Buffer;
}

/** A worker process and its two pipes: frames on fd 3, printf on stdout. */
class WorkerProcess {
  readonly child: ChildProcess;
  private readonly sock: Socket;
  private readonly decoder = new FrameDecoder(undefined, (h) => {
    const dst = h.result === 0 ? this.waiting.get(h.seq)?.dst : undefined;
    return dst && dst.length === h.length - h.bodyLen ? dst : null;
  });
  private readonly waiting = new Map<number, Waiter>();
  /** Replies that arrived but wait for their printf marker (or for an earlier reply that does): in order. */
  private readonly held: { frame: Frame; marker: number; waiter: Waiter | undefined }[] = [];
  private readonly splitter: PrintfSplitter;
  private markedReplies = 0;
  private seq = 0;
  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.sock.uncork();
  };
  /** Set once the process is gone: why. */
  dead: string | null = null;
  readonly exited: Promise<void>;
  sticky = 0;
  onPrintf: (text: string) => void = () => {};
  /** Scratch for request bodies: encodeFrame copies the body, so one buffer serves every call. */
  private readonly scratch = Buffer.allocUnsafe(8 * 16);

  constructor(libraryPath: string) {
    const nonce = randomBytes(12).toString('hex');
    // fd 4, an IPC channel, carries only the socket of the session's data lane (WorkerContext.adoptLane).
    const stdio: ('ignore' | 'pipe' | 'inherit' | 'ipc')[] = ['ignore', 'pipe', 'inherit', 'pipe', 'ipc'];
    // ELECTRON_RUN_AS_NODE: when the server runs inside an Electron host, its execPath is Electron, not node.
    this.child = spawn(process.execPath, [WORKER_SCRIPT, libraryPath, nonce], { stdio, env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } });
    const marker = printfMarker(nonce);
    this.sock = this.child.stdio[WORKER_FD] as Socket;
    this.splitter = new PrintfSplitter(marker, (t) => this.onPrintf(t), () => this.release());
    this.child.stdout!.on('data', (c: Buffer) => this.splitter.push(c));
    this.sock.on('data', (c: Buffer) => {
      try {
        this.decoder.feed(c, (f) => this.onReply(f));
      } catch (e) {
        // Garbled framing from a worker (a driver scribbling over its memory): that session is over, not the server.
        this.gone(`sent a bad frame (${(e as Error).message})`);
        this.child.kill('SIGKILL');
      }
    });
    this.sock.on('error', () => {}); // 'exit' follows
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.gone(signal ? `killed by ${signal}` : `exited with code ${code}`);
        resolve();
      });
      this.child.on('error', (e) => {
        this.gone(`could not start: ${e.message}`);
        resolve();
      });
    });
  }

  private gone(why: string): void {
    if (this.dead) return;
    this.dead = why;
    this.sticky = WORKER_DIED;
    const err = new CudaError(WORKER_DIED, `the session's worker process ${why}`);
    for (const h of this.held.splice(0)) h.waiter?.reject(err);
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  /** Sends a call; with `reply`, resolves with the reply frame (rejects with its CUresult). */
  call(op: number, stream: number, nums: number, bulk?: Uint8Array): void;
  call(op: number, stream: number, nums: number, bulk: Uint8Array | undefined, reply: true, dst?: Uint8Array): Promise<Frame>;
  call(op: number, stream: number, nums: number, bulk?: Uint8Array, reply?: true, dst?: Uint8Array): Promise<Frame> | void {
    if (this.dead) {
      if (reply) return Promise.reject(new CudaError(WORKER_DIED, `the session's worker process ${this.dead}`));
      return;
    }
    const seq = (this.seq = (this.seq + 1) >>> 0);
    if (!this.corked) {
      this.corked = true;
      this.sock.cork();
      process.nextTick(this.uncork);
    }
    const flags = reply ? WFlag.WANT_REPLY : 0;
    const bodyLen = 8 * nums;
    if (bulk && bulk.length > SMALL_BULK) {
      for (const p of encodeFrame(op, { seq, stream, flags, body: this.scratch.subarray(0, bodyLen), bulk })) this.sock.write(p);
    } else {
      // Small bulks (launch parameters, small copies) are copied into the frame: the write may complete after
      // the caller's buffer was reused, and one small allocation is cheaper than a second write.
      const n = bulk ? bulk.length : 0;
      const frame = Buffer.allocUnsafe(HEADER_SIZE + bodyLen + n);
      writeHeader(frame, 0, { length: bodyLen + n, op, flags, seq, stream, bodyLen, result: 0 });
      this.scratch.copy(frame, HEADER_SIZE, 0, bodyLen);
      if (bulk) frame.set(bulk, HEADER_SIZE + bodyLen);
      this.sock.write(frame);
    }
    if (!reply) return;
    const target = dst ? Buffer.from(dst.buffer, dst.byteOffset, dst.length) : undefined;
    return new Promise<Frame>((resolve, reject) => this.waiting.set(seq, { resolve, reject, dst: target }));
  }

  /** Fills the request body's numbers; returns how many. */
  nums(...v: number[]): number {
    for (let i = 0; i < v.length; i++) this.scratch.writeDoubleLE(v[i], 8 * i);
    return v.length;
  }

  private onReply(f: Frame): void {
    this.sticky = f.stream;
    const waiter = this.waiting.get(f.seq);
    this.waiting.delete(f.seq);
    const marker = f.flags & WFlag.MARKED ? ++this.markedReplies : 0;
    if (this.held.length === 0 && marker <= this.splitter.markers) return settle(f, waiter);
    this.held.push({ frame: f, marker, waiter });
  }

  private release(): void {
    while (this.held.length && this.held[0].marker <= this.splitter.markers) {
      const h = this.held.shift()!;
      settle(h.frame, h.waiter);
    }
  }

  end(): void {
    if (this.dead) return;
    this.sock.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), EXIT_GRACE_MS);
    t.unref();
    void this.exited.then(() => clearTimeout(t));
  }

  kill(): void {
    if (!this.dead) this.child.kill('SIGKILL');
  }
}

function settle(f: Frame, w: Waiter | undefined): void {
  if (!w) return;
  if (f.result === 0) w.resolve(f);
  else w.reject(new CudaError(f.result, f.body.toString('utf8')));
}

class WStream {
  constructor(readonly id: number) {}
}
class WEvent {
  constructor(readonly id: number) {}
}
class WModule {
  constructor(readonly id: number) {}
}

export class WorkerContext implements DeviceContext {
  va = { base: 0, size: 0 };
  private readonly allocs = new Map<number, number>();
  private allocated = 0;
  private nextId = 1;
  private destroyed = false;

  constructor(readonly w: WorkerProcess, private readonly onDestroy: () => void) {}

  get stickyError(): number {
    return this.w.sticky;
  }

  get mappedBytes(): number {
    return this.destroyed || this.w.dead ? 0 : this.allocated;
  }

  private sid(s: BackendStream): number {
    return s === null ? 0 : (s as WStream).id;
  }

  alloc(addr: number, size: number): void {
    this.w.call(W.ALLOC, 0, this.w.nums(addr, size));
    this.allocs.set(addr, size);
    this.allocated += size;
  }

  free(addr: number): void {
    this.w.call(W.FREE, 0, this.w.nums(addr));
    this.allocated -= this.allocs.get(addr) ?? 0;
    this.allocs.delete(addr);
  }

  // A large `src` is held by the pipe write until written (see DeviceContext.enqueueWrite); the server passes
  // frame bulks, and frames that large are assembled in buffers of their own.
  enqueueWrite(stream: BackendStream, dst: number, src: Uint8Array): void {
    this.w.call(W.WRITE, this.sid(stream), this.w.nums(dst), src);
  }

  async enqueueRead(stream: BackendStream, src: number, dst: Uint8Array): Promise<void> {
    const r = await this.w.call(W.READ, this.sid(stream), this.w.nums(src, dst.length), undefined, true, dst);
    if (!r.placed) dst.set(r.bulk);
  }

  enqueueCopy(stream: BackendStream, dst: number, src: number, size: number): void {
    this.w.call(W.COPY, this.sid(stream), this.w.nums(dst, src, size));
  }

  enqueueWrite2D(stream: BackendStream, dst: number, dpitch: number, src: Uint8Array, width: number, height: number): void {
    this.w.call(W.WRITE_2D, this.sid(stream), this.w.nums(dst, dpitch, width, height), src.subarray(0, width * height));
  }

  async enqueueRead2D(stream: BackendStream, src: number, spitch: number, dst: Uint8Array, width: number, height: number): Promise<void> {
    const r = await this.w.call(W.READ_2D, this.sid(stream), this.w.nums(src, spitch, width, height), undefined, true, dst.subarray(0, width * height));
    if (!r.placed) dst.set(r.bulk);
  }

  enqueueCopy2D(stream: BackendStream, dst: number, dpitch: number, src: number, spitch: number, width: number, height: number): void {
    this.w.call(W.COPY_2D, this.sid(stream), this.w.nums(dst, dpitch, src, spitch, width, height));
  }

  enqueueMemset(stream: BackendStream, dst: number, value: number, elemSize: 1 | 2 | 4, width: number, height: number, pitch: number): void {
    this.w.call(W.MEMSET, this.sid(stream), this.w.nums(dst, value, elemSize, width, height, pitch));
  }

  loadModule(): { handle: unknown; info: ModuleInfo } {
    throw new CudaError(CUDA_ERROR_NOT_SUPPORTED, 'a worker context loads modules with loadModuleAsync');
  }

  async loadModuleAsync(image: Uint8Array, kind: 'fatbin' | 'ptx' | 'cubin'): Promise<{ handle: unknown; info: ModuleInfo }> {
    const m = new WModule(this.nextId++);
    const r = await this.w.call(W.LOAD, 0, this.w.nums(m.id, KINDS[kind]), image, true);
    return { handle: m, info: unpack(r.bulk) as ModuleInfo };
  }

  unloadModule(handle: unknown): void {
    this.w.call(W.UNLOAD, 0, this.w.nums((handle as WModule).id));
  }

  setLimit(limit: number, value: number): void {
    this.w.call(W.SET_LIMIT, 0, this.w.nums(limit, value));
  }

  setKernelAttribute(module: unknown, kernel: number, attr: number, value: number): void {
    this.w.call(W.SET_ATTR, 0, this.w.nums((module as WModule).id, kernel, attr, value));
  }

  launch(stream: BackendStream, module: unknown, kernel: number, cfg: LaunchConfig, onPrintf: (text: string) => void): void {
    this.w.onPrintf = onPrintf; // the session's one printf sink (the same function for every launch)
    const g = cfg.grid;
    const b = cfg.block;
    const n = this.w.nums((module as WModule).id, kernel, g[0], g[1], g[2], b[0], b[1], b[2], cfg.sharedMem, cfg.cooperative ? 1 : 0);
    this.w.call(W.LAUNCH, this.sid(stream), n, cfg.params);
  }

  createStream(flags: number, priority: number): BackendStream {
    const s = new WStream(this.nextId++);
    this.w.call(W.STREAM_CREATE, 0, this.w.nums(s.id, flags, priority));
    return s;
  }

  destroyStream(s: BackendStream): void {
    this.w.call(W.STREAM_DESTROY, 0, this.w.nums(this.sid(s)));
  }

  async synchronize(stream: BackendStream | null): Promise<void> {
    await this.w.call(W.SYNC, stream === null ? WHOLE_CONTEXT : this.sid(stream), 0, undefined, true);
  }

  query(): boolean {
    throw new CudaError(CUDA_ERROR_NOT_SUPPORTED, 'a worker context queries with queryAsync');
  }

  queryAsync(stream: BackendStream | null): Promise<boolean> {
    return this.w.call(W.QUERY, stream === null ? WHOLE_CONTEXT : this.sid(stream), 0, undefined, true).then(
      () => true,
      (e: CudaError) => {
        if (e.code === CUDA_ERROR_NOT_READY) return false;
        throw e;
      },
    );
  }

  createEvent(flags: number): BackendEvent {
    const e = new WEvent(this.nextId++);
    this.w.call(W.EVENT_CREATE, 0, this.w.nums(e.id, flags));
    return e;
  }

  destroyEvent(e: BackendEvent): void {
    this.w.call(W.EVENT_DESTROY, 0, this.w.nums((e as WEvent).id));
  }

  recordEvent(e: BackendEvent, stream: BackendStream): void {
    this.w.call(W.EVENT_RECORD, this.sid(stream), this.w.nums((e as WEvent).id));
  }

  streamWaitEvent(stream: BackendStream, e: BackendEvent): void {
    this.w.call(W.WAIT_EVENT, this.sid(stream), this.w.nums((e as WEvent).id));
  }

  async synchronizeEvent(e: BackendEvent): Promise<void> {
    await this.w.call(W.EVENT_SYNC, 0, this.w.nums((e as WEvent).id), undefined, true);
  }

  queryEvent(): boolean {
    throw new CudaError(CUDA_ERROR_NOT_SUPPORTED, 'a worker context queries events with queryEventAsync');
  }

  queryEventAsync(e: BackendEvent): Promise<boolean> {
    return this.w.call(W.EVENT_QUERY, 0, this.w.nums((e as WEvent).id), undefined, true).then(
      () => true,
      (err: CudaError) => {
        if (err.code === CUDA_ERROR_NOT_READY) return false;
        throw err;
      },
    );
  }

  elapsed(): number {
    throw new CudaError(CUDA_ERROR_NOT_SUPPORTED, 'a worker context times events with elapsedAsync');
  }

  async elapsedAsync(start: BackendEvent, end: BackendEvent): Promise<number> {
    const r = await this.w.call(W.ELAPSED, 0, this.w.nums((start as WEvent).id, (end as WEvent).id), undefined, true);
    return r.body.readDoubleLE(0);
  }

  // The data lane: its socket moves to the worker, which reads and writes copy payloads on it in the order of
  // these calls, so they never cross the server process (one pipe hop and two copies fewer per byte, and a
  // busy server's event loop never carries them).
  adoptLane(socket: Socket): boolean {
    if (this.w.dead || this.destroyed) return false;
    try {
      return this.w.child.send('lane', socket);
    } catch {
      return false;
    }
  }

  laneWrite(stream: BackendStream, dst: number, dpitch: number, width: number, height: number): void {
    this.w.call(W.LANE_WRITE, this.sid(stream), this.w.nums(dst, dpitch, width, height));
  }

  laneSkip(size: number): void {
    this.w.call(W.LANE_SKIP, 0, this.w.nums(size));
  }

  async laneRead(stream: BackendStream, src: number, spitch: number, width: number, height: number): Promise<void> {
    await this.w.call(W.LANE_READ, this.sid(stream), this.w.nums(src, spitch, width, height), undefined, true);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    // The worker frees the context and exits once it has read this and the end of its pipe.
    this.w.call(W.DESTROY, 0, 0);
    this.w.end();
    this.onDestroy();
  }
}

/** Starts a worker process and initialises the driver in it; resolves with the devices it sees. */
async function startWorker(libraryPath: string): Promise<{ w: WorkerProcess; infos: DeviceInfo[] }> {
  const w = new WorkerProcess(libraryPath);
  try {
    await new Promise<void>((resolve, reject) => {
      w.child.once('spawn', resolve);
      w.child.once('error', reject);
    });
    const r = await w.call(W.INIT, 0, 0, undefined, true);
    return { w, infos: unpack(r.body) as DeviceInfo[] };
  } catch (e) {
    w.kill();
    throw e;
  }
}

/**
 * Worker processes with the driver initialised, ready for a context: starting node, loading koffi and cuInit
 * take hundreds of milliseconds, which a session would otherwise wait for at HELLO. One is kept spare.
 */
class SparePool {
  private spare: Promise<WorkerProcess | null> | null = null;
  private closed = false;

  constructor(private readonly libraryPath: string, first?: WorkerProcess) {
    if (first) this.spare = Promise.resolve(first);
  }

  /** A ready worker: the spare when it is alive, else a new one. Starts the next spare. */
  async take(): Promise<WorkerProcess> {
    const spare = this.spare ? await this.spare : null;
    this.spare = null;
    const w = spare && !spare.dead ? spare : (await startWorker(this.libraryPath)).w;
    this.refill();
    return w;
  }

  private refill(): void {
    if (this.closed || this.spare) return;
    this.spare = startWorker(this.libraryPath).then(
      ({ w }) => {
        if (this.closed) w.kill();
        return this.closed ? null : w;
      },
      () => null, // the next take() starts one itself and reports the error
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    const spare = this.spare ? await this.spare : null;
    this.spare = null;
    if (spare) {
      spare.end();
      await spare.exited;
    }
  }
}

export class WorkerDevice implements Device {
  private readonly contexts = new Set<WorkerContext>();

  constructor(private readonly spares: SparePool, readonly ordinal: number, readonly info: DeviceInfo) {}

  createContext(): DeviceContext {
    throw new CudaError(CUDA_ERROR_NOT_SUPPORTED, 'a worker device creates contexts with createContextAsync');
  }

  async createContextAsync(opts: { vaSize: number }): Promise<DeviceContext> {
    const w = await this.spares.take();
    try {
      const r = await w.call(W.CREATE, 0, w.nums(this.ordinal, opts.vaSize), undefined, true);
      const c = new WorkerContext(w, () => this.contexts.delete(c));
      c.va = unpack(r.body) as { base: number; size: number };
      this.contexts.add(c);
      return c;
    } catch (e) {
      w.kill();
      throw e;
    }
  }

  memUsed(): number {
    let n = 0;
    for (const c of this.contexts) n += c.mappedBytes;
    return n;
  }

  async closeAll(): Promise<void> {
    const all = [...this.contexts];
    for (const c of all) c.destroy();
    await Promise.all(all.map((c) => c.w.exited));
  }
}

export class CudaWorkerBackend implements Backend {
  readonly kind = 'cuda' as const;

  constructor(readonly devices: readonly WorkerDevice[], private readonly spares: SparePool) {}

  async close(): Promise<void> {
    await Promise.all([this.spares.close(), ...this.devices.map((d) => d.closeAll())]);
  }
}

/**
 * Enumerates the GPUs in a first worker (so that this process never loads libcuda), which then waits as the
 * spare for the first session, and returns a backend whose contexts each live in a worker process of their
 * own. Library: as createCudaBackend.
 */
export async function createCudaWorkerBackend(opts?: { libraryPath?: string }): Promise<Backend> {
  const path = opts?.libraryPath ?? (process.env.RGPU_LIBCUDA || 'libcuda.so.1');
  const { w, infos } = await startWorker(path);
  const spares = new SparePool(path, w);
  return new CudaWorkerBackend(
    infos.map((info, i) => new WorkerDevice(spares, i, { ...info, type: info.type || poolType(info.name), uuid: new Uint8Array(info.uuid) })),
    spares,
  );
}
