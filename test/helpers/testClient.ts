// A TypeScript client of the GPU server protocol for tests and benchmarks: it speaks the same frames as
// the C intercept library (contracts.md): client-minted handles, its own first-fit allocator inside the
// va window of the HELLO reply, and parameter packing from the MODULE_LOAD layout.
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Unpackr } from 'msgpackr';
import {
  encodeEventCreateArgs,
  encodeEventElapsedArgs,
  encodeEventRecordArgs,
  encodeEventSyncArgs,
  encodeLaunchArgs,
  encodeMemAllocArgs,
  encodeMemFreeArgs,
  encodeMemcpyDtodArgs,
  encodeMemcpyDtohArgs,
  encodeMemcpyHtodArgs,
  encodeMemcpyDtohLaneArgs,
  encodeMemcpyHtodLaneArgs,
  encodeMemsetArgs,
  encodeModuleUnloadArgs,
  encodePingArgs,
  encodeStreamCreateArgs,
  encodeStreamDestroyArgs,
  Flag,
  Op,
  PROTOCOL_VERSION,
} from '../../gpu-runtime/protocol/generated/ops';
import { encodeFrame, FrameDecoder, packArgs, type BulkPlacer, type Frame } from '../../gpu-runtime/protocol/ts/codec';
import { cuResultName } from '../../gpu-runtime/protocol/generated/cuResult';

/** u64 fields come back as bigint above 2^32 (see server wire.ts); tests want numbers. */
const unpackr = new Unpackr({ mapsAsObjects: true, int64AsType: 'number' } as object);
export const unpackReply = (b: Buffer): any => (b.length ? unpackr.unpack(b) : undefined); // eslint-disable-line @typescript-eslint/no-explicit-any

/** A reply whose result is not CUDA_SUCCESS. */
export class ReplyError extends Error {
  readonly code = 'RGPU_ERR_REPLY';
  constructor(
    readonly result: number,
    readonly op: number,
    readonly serverMessage: string,
  ) {
    super(`${cuResultName(result)}${serverMessage ? `: ${serverMessage}` : ''}`);
    this.name = 'ReplyError';
  }
}

export interface HelloReply {
  session: string;
  device: { type: string; name: string; totalMem: number; uuid: Buffer; ccMajor: number; ccMinor: number; attributes: number[] };
  va: { base: number; size: number };
  quota: { memory: number; handles: number; queuedOps: number };
  server: string;
  /** A plain-TCP server's offer of a data lane (LANE_ATTACH); a kernel-proxy adds host and port. */
  lane?: { ticket: string; host?: string; port?: number; skipsServer?: boolean };
}

export interface KernelLayout {
  name: string;
  params: [number, number][];
  paramSize: number;
  attrs: Record<string, number>;
}

export interface ModuleReply {
  kernels: KernelLayout[];
  globals: { name: string; addr: number; size: number }[];
}

/** A launch argument: a number (u32/i32 for 4-byte slots, u64 for 8), bigint, {f32}/{f64}, or raw bytes. */
export type KernelArg = number | bigint | { f32: number } | { f64: number } | Uint8Array;

export interface ConnectOptions {
  host?: string;
  port: number;
  tls?: tls.ConnectionOptions;
}

const u64 = (v: number, size: number, fn: (b: Buffer, o: number, v: any) => number, arg: any): Buffer => { // eslint-disable-line @typescript-eslint/no-explicit-any
  const b = Buffer.allocUnsafe(size);
  fn(b, 0, arg);
  return b;
};

export class TestClient {
  /** Optional: where large reply bulks land as they arrive (benchmarks read into a warm buffer). */
  placer?: BulkPlacer;
  private readonly decoder = new FrameDecoder(undefined, (h, body) => (this.placer ? this.placer(h, body) : null));
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (f: Frame) => void; reject: (e: Error) => void }>();
  /** QUEUED notifications as they arrived. */
  readonly queued: { position: number; type: string }[] = [];
  /** PRINTF text as it arrived. */
  readonly printf: string[] = [];
  /** Error frames for lost framing (op 0) and other unsolicited frames. */
  readonly unsolicited: Frame[] = [];
  readonly closed: Promise<void>;
  hello?: HelloReply;
  private allocs: { addr: number; size: number }[] = [];
  private nextHandle = { stream: 2, event: 1, module: 1 };
  private readonly modules = new Map<number, ModuleReply>();
  onQueued?: (position: number, type: string) => void;

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (c: Buffer) => this.onData(c));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    this.closed.then(() => {
      for (const w of this.waiting.values()) w.reject(new Error('connection closed'));
      this.waiting.clear();
    });
  }

  static connect(o: ConnectOptions): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const host = o.host ?? '127.0.0.1';
      const s = o.tls ? tls.connect({ host, port: o.port, ...o.tls }) : net.connect(o.port, host);
      s.once(o.tls ? 'secureConnect' : 'connect', () => {
        s.off('error', reject);
        resolve(new TestClient(s));
      });
      s.once('error', reject);
    });
  }

  /** Connects and says HELLO as a session; rejects with ReplyError when refused. */
  static async session(port: number, opts: { gpuType?: string; token?: string; host?: string; onQueued?: (p: number, t: string) => void } = {}): Promise<TestClient> {
    const c = await TestClient.connect({ port, host: opts.host });
    c.onQueued = opts.onQueued;
    try {
      await c.sayHello({ gpuType: opts.gpuType, token: opts.token });
    } catch (e) {
      c.close();
      throw e;
    }
    return c;
  }

  private onData(chunk: Buffer): void {
    for (const f of this.decoder.push(chunk)) {
      if (f.flags & Flag.NOTIFY) {
        if (f.op === Op.QUEUED) {
          const [position, type] = unpackReply(f.body) as [number, string];
          this.queued.push({ position, type });
          this.onQueued?.(position, type);
        } else if (f.op === Op.PRINTF) this.printf.push(f.bulk.toString('utf8'));
        else this.unsolicited.push(f);
        continue;
      }
      const w = this.waiting.get(f.seq);
      if (w && f.op !== 0) {
        this.waiting.delete(f.seq);
        w.resolve(f);
      } else this.unsolicited.push(f);
    }
  }

  // --- raw frames -----------------------------------------------------------------------------------

  /** Writes corked until the end of this tick, so a burst of posts leaves in one writev (as the C client batches). */
  writeRaw(b: Buffer | Buffer[]): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    for (const p of Array.isArray(b) ? b : [b]) this.socket.write(p);
  }

  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  /** Sends a request and resolves with its reply frame (whatever the result). */
  requestRaw(op: number, o: { body?: Buffer; bulk?: Uint8Array; stream?: number } = {}): Promise<Frame> {
    const seq = (this.seq = (this.seq + 1) >>> 0);
    const p = new Promise<Frame>((resolve, reject) => this.waiting.set(seq, { resolve, reject }));
    this.writeRaw(encodeFrame(op, { seq, body: o.body, bulk: o.bulk, stream: o.stream }));
    return p;
  }

  /** Sends a request; resolves with the reply frame, rejects with ReplyError on a non-zero result. */
  async request(op: number, o: { body?: Buffer; bulk?: Uint8Array; stream?: number } = {}): Promise<Frame> {
    const f = await this.requestRaw(op, o);
    if (f.result !== 0) {
      let message = '';
      try {
        message = (unpackReply(f.body) as { message?: string })?.message ?? '';
      } catch {
        /* a fixed-body op's error may carry no map */
      }
      throw new ReplyError(f.result, op, message);
    }
    return f;
  }

  /** A no-reply op (FLAG_NO_REPLY): errors come back with the next synchronising reply. */
  post(op: number, o: { body?: Buffer; bulk?: Uint8Array; stream?: number } = {}): void {
    const seq = (this.seq = (this.seq + 1) >>> 0);
    this.writeRaw(encodeFrame(op, { seq, flags: Flag.NO_REPLY, body: o.body, bulk: o.bulk, stream: o.stream }));
  }

  // --- control --------------------------------------------------------------------------------------

  async sayHello(o: { version?: number; token?: string; gpuType?: string; purpose?: string } = {}): Promise<HelloReply> {
    const body = packArgs(Op.HELLO, {
      version: o.version ?? PROTOCOL_VERSION,
      token: o.token ?? '',
      gpuType: o.gpuType ?? '',
      purpose: o.purpose ?? 'session',
      client: { pid: process.pid, host: 'test', argv0: 'testClient', runtime: 'node' },
    });
    const f = await this.request(Op.HELLO, { body });
    const r = unpackReply(f.body) as HelloReply;
    if (r.va) this.hello = r;
    return r;
  }

  async inventory(): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
    return unpackReply((await this.request(Op.INVENTORY)).body);
  }

  async stats(): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
    return unpackReply((await this.request(Op.SESSION_STATS)).body);
  }

  async ping(): Promise<number> {
    const t0 = Date.now();
    const f = await this.request(Op.PING, { body: u64(t0, 8, encodePingArgs, { t0 }) });
    return Number(f.body.readBigUInt64LE(0));
  }

  goodbye(): void {
    this.post(Op.GOODBYE);
  }

  close(): void {
    this.socket.destroy();
  }

  // --- memory ---------------------------------------------------------------------------------------

  /** First fit, 256-byte aligned, inside the va window; checks nothing else (the server re-checks). */
  allocAddress(size: number): number {
    if (!this.hello) throw new Error('no session');
    const { base, size: vaSize } = this.hello.va;
    let at = base;
    for (const a of this.allocs) {
      if (at + size <= a.addr) break;
      at = Math.ceil((a.addr + a.size) / 256) * 256;
    }
    if (at + size > base + vaSize) throw new Error('va window full');
    this.allocs.push({ addr: at, size });
    this.allocs.sort((x, y) => x.addr - y.addr);
    return at;
  }

  alloc(size: number): number {
    const addr = this.allocAddress(size);
    this.post(Op.MEM_ALLOC, { body: u64(0, 16, encodeMemAllocArgs, { addr, size }) });
    return addr;
  }

  /** MEM_ALLOC at a chosen address, with a reply (so errors are synchronous). */
  allocAt(addr: number, size: number): Promise<Frame> {
    return this.request(Op.MEM_ALLOC, { body: u64(0, 16, encodeMemAllocArgs, { addr, size }) });
  }

  free(addr: number): void {
    this.allocs = this.allocs.filter((a) => a.addr !== addr);
    this.post(Op.MEM_FREE, { body: u64(0, 8, encodeMemFreeArgs, { addr }) });
  }

  htod(dst: number, data: Uint8Array, stream = 0): void {
    this.post(Op.MEMCPY_HTOD, { body: u64(0, 8, encodeMemcpyHtodArgs, { dst }), bulk: data, stream });
  }

  async dtoh(src: number, size: number, stream = 0): Promise<Buffer> {
    return (await this.request(Op.MEMCPY_DTOH, { body: u64(0, 16, encodeMemcpyDtohArgs, { src, size }), stream })).bulk;
  }

  /** MEMCPY_HTOD_LANE: the request only; the caller writes the `size` bytes on the lane. */
  htodLane(dst: number, size: number, stream = 0): void {
    this.post(Op.MEMCPY_HTOD_LANE, { body: u64(0, 16, encodeMemcpyHtodLaneArgs, { dst, size }), stream });
  }

  /** MEMCPY_DTOH_LANE: resolves with the reply (whatever its result); the bytes come on the lane. */
  dtohLane(src: number, size: number, stream = 0): Promise<Frame> {
    return this.requestRaw(Op.MEMCPY_DTOH_LANE, { body: u64(0, 16, encodeMemcpyDtohLaneArgs, { src, size }), stream });
  }

  dtod(dst: number, src: number, size: number, stream = 0): void {
    this.post(Op.MEMCPY_DTOD, { body: u64(0, 24, encodeMemcpyDtodArgs, { dst, src, size }), stream });
  }

  memset(dst: number, value: number, elemSize: 1 | 2 | 4, count: number, stream = 0): void {
    this.post(Op.MEMSET, { body: u64(0, 40, encodeMemsetArgs, { dst, value, elemSize, width: count, height: 1, pitch: count * elemSize }), stream });
  }

  // --- modules and launches -------------------------------------------------------------------------

  /** Loads an image; with `cacheFirst` it first tries the server's cache by hash (empty bulk). */
  async loadModule(image: Uint8Array, kind: 'ptx' | 'fatbin' | 'cubin' = 'ptx', o: { cacheFirst?: boolean; name?: string } = {}): Promise<{ module: number; info: ModuleReply; cacheHit: boolean }> {
    const module = this.nextHandle.module++;
    const hash = createHash('sha256').update(image).digest('hex');
    const args = { module, hash, kind, size: image.length, name: o.name ?? 'test' };
    let f: Frame | undefined;
    if (o.cacheFirst) {
      f = await this.requestRaw(Op.MODULE_LOAD, { body: packArgs(Op.MODULE_LOAD, { ...args, size: 0 }) });
      if (f.result === 0) {
        const info = unpackReply(f.body) as ModuleReply;
        this.modules.set(module, info);
        return { module, info, cacheHit: true };
      }
    }
    f = await this.request(Op.MODULE_LOAD, { body: packArgs(Op.MODULE_LOAD, args), bulk: image });
    const info = unpackReply(f.body) as ModuleReply;
    this.modules.set(module, info);
    return { module, info, cacheHit: false };
  }

  unloadModule(module: number): void {
    this.post(Op.MODULE_UNLOAD, { body: u64(0, 4, encodeModuleUnloadArgs, { module }) });
  }

  /** Packs `args` by the kernel's parameter layout from its MODULE_LOAD reply. */
  packParams(module: number, kernel: number, args: KernelArg[]): Buffer {
    const k = this.modules.get(module)?.kernels[kernel];
    if (!k) throw new Error(`no kernel ${kernel} in module ${module}`);
    if (args.length !== k.params.length) throw new Error(`${k.name} takes ${k.params.length} arguments, got ${args.length}`);
    const b = Buffer.alloc(k.paramSize);
    k.params.forEach(([off, size], i) => {
      const a = args[i];
      if (a instanceof Uint8Array) b.set(a.subarray(0, size), off);
      else if (typeof a === 'bigint') b.writeBigUInt64LE(a, off);
      else if (typeof a === 'number') {
        if (size === 8) b.writeBigUInt64LE(BigInt(a), off);
        else if (size === 4) (a < 0 ? b.writeInt32LE(a, off) : b.writeUInt32LE(a, off));
        else if (size === 2) b.writeUInt16LE(a, off);
        else b.writeUInt8(a, off);
      } else if ('f32' in a) b.writeFloatLE(a.f32, off);
      else b.writeDoubleLE(a.f64, off);
    });
    return b;
  }

  kernelIndex(module: number, name: string): number {
    const i = this.modules.get(module)?.kernels.findIndex((k) => k.name === name || k.name.includes(name)) ?? -1;
    if (i < 0) throw new Error(`no kernel ${name} in module ${module}`);
    return i;
  }

  launch(module: number, kernel: number, grid: [number, number?, number?], block: [number, number?, number?], args: KernelArg[], o: { stream?: number; sharedMem?: number } = {}): void {
    const body = Buffer.allocUnsafe(40);
    encodeLaunchArgs(body, 0, {
      module,
      kernel,
      gridX: grid[0],
      gridY: grid[1] ?? 1,
      gridZ: grid[2] ?? 1,
      blockX: block[0],
      blockY: block[1] ?? 1,
      blockZ: block[2] ?? 1,
      sharedMem: o.sharedMem ?? 0,
      launchFlags: 0,
    });
    this.post(Op.LAUNCH, { body, bulk: this.packParams(module, kernel, args), stream: o.stream });
  }

  // --- streams, events, sync ------------------------------------------------------------------------

  async sync(): Promise<void> {
    await this.request(Op.CTX_SYNC);
  }

  async streamSync(stream: number): Promise<void> {
    await this.request(Op.STREAM_SYNC, { stream });
  }

  createStream(flags = 0, priority = 0): number {
    const handle = this.nextHandle.stream++;
    this.post(Op.STREAM_CREATE, { body: u64(0, 12, encodeStreamCreateArgs, { handle, flags, priority }) });
    return handle;
  }

  destroyStream(handle: number): void {
    this.post(Op.STREAM_DESTROY, { body: u64(0, 4, encodeStreamDestroyArgs, { handle }) });
  }

  createEvent(flags = 0): number {
    const handle = this.nextHandle.event++;
    this.post(Op.EVENT_CREATE, { body: u64(0, 8, encodeEventCreateArgs, { handle, flags }) });
    return handle;
  }

  recordEvent(handle: number, stream = 0): void {
    this.post(Op.EVENT_RECORD, { body: u64(0, 4, encodeEventRecordArgs, { handle }), stream });
  }

  async eventSync(handle: number): Promise<void> {
    await this.request(Op.EVENT_SYNC, { body: u64(0, 4, encodeEventSyncArgs, { handle }) });
  }

  async elapsed(start: number, end: number): Promise<number> {
    return (await this.request(Op.EVENT_ELAPSED, { body: u64(0, 8, encodeEventElapsedArgs, { start, end }) })).body.readFloatLE(0);
  }
}
