// Block workers shared by every context of the emulated backend. A large launch is cut into ranges of CTAs;
// every idle worker joins the oldest launch that has ranges left and claims them one at a time from a shared
// counter (blockWorker.ts), so a launch costs one message each way per worker however it is cut, and a worker
// that finishes early takes more. Launches of several contexts are served in arrival order. A launch settles
// once every worker on it has replied, so the context's next stream op never overlaps it; the first failing
// range stops the others. While a launch waits with no worker, the others' workers leave theirs after their
// current range, so one long kernel does not hold every worker until it ends.
//
// Known limit (why the pool is off by default): a heap window that a worker has seen is freed later than an
// inline one, even with its worker replaced, and each window is a multi-GiB private mapping the kernel
// accounts as committed. Adjacent ones merge into one mapping; once that is larger than RAM, fork() fails
// (spawn ENOMEM) in a process that both serves many short sessions and spawns programs (test/cuda does).
// Measured: 40 contexts of 8 GiB va in a row, 131 GiB committed -> 30 GiB with replacement; 4.6 GiB inline. A worker that dies fails only the launch it was on; the next gets a fresh worker.

import { Worker } from 'node:worker_threads';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CudaError, CUresult } from '../../server/src/backend';
import type { DeviceHeap } from './memory';
import type { GridConfig, LaunchKernel } from './scheduler';
import type { DropMsg, RunMsg, RunReply } from './blockWorker';

const WORKER_FILE = path.join(__dirname, 'blockWorker.js');
/** Ranges per worker: enough to even out blocks of unequal cost and busy or preempted workers. */
const RANGES_PER_WORKER = 8;

export interface SplitLaunch extends Pick<GridConfig, 'grid' | 'block' | 'sharedMem' | 'smCount' | 'watchdogMs' | 'printfLimit'> {
  kernel: LaunchKernel;
  heap: DeviceHeap;
  /** A copy: the caller's buffer is reused by its next launch. */
  params: Uint8Array;
  /** Set to non-zero to stop the launch (context destroyed); one SharedArrayBuffer cell per launch. */
  abort: Int32Array;
}

interface Running {
  L: SplitLaunch;
  deadline: number;
  parts: number;
  /** counter[0]: the next range to claim, shared with the workers. */
  counter: Int32Array;
  outs: string[];
  /** Workers on this launch that have not replied yet. */
  active: number;
  error: CudaError | null;
  /** The error is only a worker's report of being stopped: a real one replaces it. */
  errorStopped: boolean;
  resolve(out: string): void;
  reject(e: CudaError): void;
}
interface Slot { w: Worker; kernels: Set<number>; heaps: Map<number, ArrayBufferLike>; busy: Running | null; dead: boolean; retire: boolean }

export class BlockPool {
  private readonly slots: Slot[] = [];
  /** Launches in arrival order that may still have ranges to hand out. */
  private readonly queue: Running[] = [];
  private readonly ids = new WeakMap<object, number>();
  private nextId = 1;
  private closed = false;
  /** Set while a launch waits with no worker on it: workers on other launches hand theirs back between ranges. */
  private readonly yieldFlag = new Int32Array(new SharedArrayBuffer(4));
  /** Times a worker left a launch that still had ranges, for another launch that waited. */
  handoffs = 0;

  private constructor(readonly size: number) {}

  /** A pool of `size` workers, or null when there are none to have (size < 1, worker script not built). */
  static create(size: number): BlockPool | null {
    if (!(size >= 1) || !fs.existsSync(WORKER_FILE)) return null;
    return new BlockPool(Math.floor(size));
  }

  /** Runs every CTA of the launch on the workers; resolves with its printf text, rejects with its CudaError. */
  run(L: SplitLaunch): Promise<string> {
    if (this.closed) return Promise.reject(new CudaError(CUresult.CUDA_ERROR_LAUNCH_FAILED, 'the emulator is shutting down'));
    const nb = L.grid[0] * L.grid[1] * L.grid[2];
    const parts = Math.min(nb, this.size * RANGES_PER_WORKER);
    return new Promise<string>((resolve, reject) => {
      this.queue.push({
        L, deadline: Date.now() + L.watchdogMs, parts, counter: new Int32Array(new SharedArrayBuffer(4)),
        outs: new Array<string>(parts).fill(''), active: 0, error: null, errorStopped: false, resolve, reject,
      });
      this.pump();
    });
  }

  /**
   * Workers may drop what they hold for these kernels and this heap (module unloaded, context gone). A worker
   * that held the heap is replaced instead: an idle worker never collects garbage, so the heap's buffer (the
   * context's whole window, committed memory to the kernel) would outlive the context in it; enough of those
   * and the process can no longer fork (spawn ENOMEM).
   */
  /** Returns a promise of the exit of every worker that held `heap`, or null when none did. */
  forget(kernels: readonly LaunchKernel[], heap: DeviceHeap | null): Promise<void> | null {
    const kids = kernels.map((k) => this.ids.get(k)).filter((x): x is number => x !== undefined);
    const hid = heap ? this.ids.get(heap) : undefined;
    const exits: Promise<void>[] = [];
    for (const s of [...this.slots]) {
      if (hid !== undefined && s.heaps.has(hid)) {
        // Resolves once the thread is gone: a worker still finishing a range of a failed launch may write to
        // the heap until then, so its window must not be handed to another context before.
        if (s.w.threadId !== -1) exits.push(new Promise((r) => s.w.once('exit', () => r())));
        s.retire = true;
        if (!s.busy) this.retireSlot(s);
        continue;
      }
      const msg: DropMsg = { t: 'drop', kernels: kids.filter((k) => s.kernels.delete(k)), heaps: [] };
      if (msg.kernels.length) s.w.postMessage(msg);
    }
    return exits.length ? Promise.all(exits).then(() => undefined) : null;
  }

  private retireSlot(s: Slot): void {
    s.dead = true;
    const i = this.slots.indexOf(s);
    if (i >= 0) this.slots.splice(i, 1);
    void s.w.terminate();
  }

  async close(): Promise<void> {
    this.closed = true;
    // Launches with workers on them settle when the last of those is stopped, below.
    for (const r of this.queue.splice(0)) {
      this.fail(r, CUresult.CUDA_ERROR_LAUNCH_FAILED, 'the emulator is shutting down', false);
      Atomics.store(r.L.abort, 0, 1);
      if (r.active === 0) this.settle(r);
    }
    await Promise.all(this.slots.splice(0).map((s) => {
      s.dead = true;
      const r = s.busy;
      s.busy = null;
      if (r) {
        this.fail(r, CUresult.CUDA_ERROR_LAUNCH_FAILED, 'the emulator is shutting down', false);
        Atomics.store(r.L.abort, 0, 1);
        r.active--;
        if (r.active === 0) this.settle(r);
      }
      return s.w.terminate();
    }));
  }

  private id(o: object): number {
    let i = this.ids.get(o);
    if (i === undefined) { i = this.nextId++; this.ids.set(o, i); }
    return i;
  }

  /** Puts idle workers on the oldest launches with ranges left. */
  private pump(): void {
    for (;;) {
      // Launches with nothing left to hand out leave the queue (their workers still finish them).
      while (this.queue.length > 0 && (this.queue[0].error || Atomics.load(this.queue[0].counter, 0) >= this.queue[0].parts)) {
        const r = this.queue.shift()!;
        if (r.active === 0) this.settle(r);
      }
      const starving = this.queue.some((x) => x.active === 0);
      Atomics.store(this.yieldFlag, 0, starving ? 1 : 0);
      if (this.queue.length === 0) return;
      let s = this.slots.find((x) => x.busy === null);
      if (!s && this.slots.length < this.size) s = this.spawn();
      if (!s) return;
      // One worker per launch at a time, in order, so every launch with work gets one before any gets two.
      const r = this.queue.find((x) => x.active === 0) ?? this.queue[0];
      this.dispatch(s, r);
    }
  }

  private spawn(): Slot | undefined {
    let w: Worker;
    try {
      w = new Worker(WORKER_FILE);
    } catch (e) {
      // No worker to be had: fail what waits rather than leave its context hanging.
      for (const r of this.queue.splice(0)) {
        this.fail(r, CUresult.CUDA_ERROR_LAUNCH_FAILED, `cannot start a block worker: ${(e as Error).message}`, false);
        if (r.active === 0) this.settle(r);
      }
      return undefined;
    }
    const s: Slot = { w, kernels: new Set(), heaps: new Map(), busy: null, dead: false, retire: false };
    w.unref();
    w.on('message', (m: RunReply) => {
      const r = s.busy;
      s.busy = null;
      w.unref();
      if (s.retire) this.retireSlot(s);
      if (r) {
        for (const [i, text] of m.outs) r.outs[i] = text;
        if (m.error) this.fail(r, m.error.code, m.error.message.replace(/^CUDA_ERROR_\w+: /, ''), m.error.stopped);
        this.left(r);
        // It yielded with ranges left: behind the launches that waited, round-robin.
        const i = !r.error && Atomics.load(r.counter, 0) < r.parts ? this.queue.indexOf(r) : -1;
        if (i >= 0) this.handoffs++;
        if (i >= 0 && r.active === 0) { this.queue.splice(i, 1); this.queue.push(r); }
      }
      this.pump();
    });
    const died = (why: string): void => {
      if (s.dead) return;
      s.dead = true;
      const i = this.slots.indexOf(s);
      if (i >= 0) this.slots.splice(i, 1);
      const r = s.busy;
      s.busy = null;
      if (r) {
        this.fail(r, CUresult.CUDA_ERROR_LAUNCH_FAILED, `kernel ${r.L.kernel.name}: block worker died: ${why}`, false);
        Atomics.store(r.L.abort, 0, 1);
        this.left(r);
      }
      if (!this.closed) this.pump();
    };
    w.on('error', (e) => died(e instanceof Error ? e.message : String(e)));
    w.on('exit', (code) => died(`exit code ${code}`));
    this.slots.push(s);
    return s;
  }

  private dispatch(s: Slot, r: Running): void {
    const L = r.L;
    const kernel = this.id(L.kernel), heap = this.id(L.heap);
    const msg: RunMsg = {
      t: 'run', kernel, heap, grid: L.grid, block: L.block, sharedMem: L.sharedMem, params: L.params,
      smCount: L.smCount, deadline: r.deadline, watchdogMs: L.watchdogMs, printfLimit: L.printfLimit,
      parts: r.parts, counter: r.counter, abort: L.abort, yieldFlag: this.yieldFlag,
    };
    if (!s.kernels.has(kernel)) {
      const k = L.kernel;
      msg.kdef = { name: k.name, src: k.src!, hasSync: k.hasSync, paramReads: k.paramReads, sharedStatic: k.sharedStatic, localBytes: k.localBytes };
      s.kernels.add(kernel);
    }
    if (s.heaps.get(heap) !== L.heap.views.buf) {
      msg.hdef = { base: L.heap.base, buf: L.heap.views.buf as SharedArrayBuffer, pages: L.heap.pages.buffer as SharedArrayBuffer };
      s.heaps.set(heap, L.heap.views.buf);
    }
    r.active++;
    s.busy = r;
    s.w.ref();
    s.w.postMessage(msg);
  }

  private fail(r: Running, code: number, message: string, stopped: boolean): void {
    if (r.error && !(r.errorStopped && !stopped)) return;
    r.error = new CudaError(code, message);
    r.errorStopped = stopped;
  }

  /** A worker left the launch: settle it when it was the last and nothing is left to hand out. */
  private left(r: Running): void {
    r.active--;
    if (r.active > 0) return;
    if (!r.error && Atomics.load(r.counter, 0) < r.parts) return; // still queued: a worker will take it
    const i = this.queue.indexOf(r);
    if (i >= 0) this.queue.splice(i, 1);
    this.settle(r);
  }

  private settle(r: Running): void {
    let text = r.outs.join('');
    if (text.length > r.L.printfLimit) text = text.slice(0, r.L.printfLimit);
    if (r.error) {
      (r.error as CudaError & { printf?: string }).printf = text;
      r.reject(r.error);
    } else r.resolve(text);
  }
}
