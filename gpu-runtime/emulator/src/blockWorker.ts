// A block worker (worker_threads): runs ranges of a grid's CTAs over a context's shared heap, claiming them
// from a counter it shares with the other workers on the launch (one message each way per launch). Kernels arrive
// as generated source once per worker and stay compiled (and optimised) for later launches; heaps arrive as
// their SharedArrayBuffers once per worker. blockPool.ts is the other side of every message here.

import { parentPort } from 'node:worker_threads';
import { CudaError, CUresult } from '../../server/src/backend';
import { AttachedHeap } from './memory';
import { runGrid, type GridConfig, type KernelFactory, type LaunchKernel } from './scheduler';

export interface KernelDef {
  name: string; src: string; hasSync: boolean; paramReads: { off: number; type: string }[]; sharedStatic: number; localBytes: number;
}
export interface HeapDef { base: number; buf: SharedArrayBuffer; pages: SharedArrayBuffer }

/** A launch to help with: claim ranges of its CTAs from `counter` until none are left or `abort` is set. */
export interface RunMsg {
  t: 'run';
  kernel: number; kdef?: KernelDef;
  heap: number; hdef?: HeapDef;
  grid: [number, number, number]; block: [number, number, number]; sharedMem: number; params: Uint8Array;
  smCount: number; deadline: number; watchdogMs: number; printfLimit: number;
  /** The grid's CTAs are cut into `parts` ranges; counter[0] is the next range to claim. */
  parts: number; counter: Int32Array; abort: Int32Array;
  /** Non-zero: another launch waits for a worker; leave this one after the current range (it stays claimable). */
  yieldFlag: Int32Array;
}
export interface DropMsg { t: 'drop'; kernels: number[]; heaps: number[] }
/** Printf text per range this worker ran (range index, text), and the error that stopped it. */
export interface RunReply { outs: [number, string][]; error?: { code: number; message: string; stopped: boolean } }

const kernels = new Map<number, LaunchKernel>();
const heaps = new Map<number, AttachedHeap>();

function run(m: RunMsg): RunReply {
  const outs: [number, string][] = [];
  let part = -1;
  try {
    if (m.kdef) {
      const d = m.kdef;
      kernels.set(m.kernel, { ...d, factory: new Function('R', d.src) as KernelFactory });
    }
    if (m.hdef) heaps.set(m.heap, new AttachedHeap(m.hdef.base, m.hdef.buf, m.hdef.pages));
    const k = kernels.get(m.kernel), heap = heaps.get(m.heap);
    if (!k || !heap) throw new CudaError(CUresult.CUDA_ERROR_LAUNCH_FAILED, 'block worker: kernel or heap was never sent');
    const nb = m.grid[0] * m.grid[1] * m.grid[2];
    const cfg: GridConfig = {
      grid: m.grid, block: m.block, sharedMem: m.sharedMem, params: m.params, smCount: m.smCount,
      watchdogMs: m.watchdogMs, deadline: m.deadline, printfLimit: m.printfLimit, split: true, abort: m.abort,
    };
    while (Atomics.load(m.abort, 0) === 0 && (part = Atomics.add(m.counter, 0, 1)) < m.parts) {
      cfg.firstBlock = Math.floor((part * nb) / m.parts);
      cfg.endBlock = Math.floor(((part + 1) * nb) / m.parts);
      outs.push([part, runGrid(k, heap, cfg)]);
      if (Atomics.load(m.yieldFlag, 0) !== 0) break;
    }
    return { outs };
  } catch (e) {
    const printed = (e as { printf?: string }).printf;
    if (printed && part >= 0) outs.push([part, printed]);
    // Only the first failure stops the others; theirs ("stopped") are not the launch's error.
    const stopped = Atomics.compareExchange(m.abort, 0, 0, 1) !== 0;
    if (e instanceof CudaError) return { outs, error: { code: e.code, message: e.message, stopped } };
    return { outs, error: { code: CUresult.CUDA_ERROR_LAUNCH_FAILED, message: `block worker: ${(e as Error)?.message ?? e}`, stopped } };
  }
}

parentPort?.on('message', (m: RunMsg | DropMsg) => {
  if (m.t === 'drop') {
    for (const k of m.kernels) kernels.delete(k);
    for (const h of m.heaps) heaps.delete(h);
    return;
  }
  parentPort!.postMessage(run(m));
});
