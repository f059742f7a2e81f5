// Per-op cost of the CUDA backend's worker process, measured through the two-server chain (chain.ts): the same
// client ops against `--devices cuda --cuda-in-process` and against `--devices cuda` (a worker per session).
// The chain's own costs (intercept, inner emulated server) are in both; the difference is the worker's.
// Then the same backend calls made directly on a DeviceContext over the fake libcuda (fake_libcuda.c, driver
// calls cost nothing), in-process and in a worker: the worker's own cost without the chain's noise.
//   node out/test/gpu-runtime/cuda/workerLatency.js [reps]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureIntercept } from '../../cuda/programs';
import type { Backend } from '../../../gpu-runtime/server/src/backend';
import { createCudaBackend, createCudaWorkerBackend } from '../../../gpu-runtime/cuda/src/index';
import { TestClient } from '../../helpers/testClient';
import { serve, serveCudaOver, stop } from './chain';

const KERNEL = 'extern "C" __global__ void nop(int *p) { if (p && threadIdx.x == 1024) *p = 1; }\n';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function time(reps: number, f: () => Promise<void>): Promise<number> {
  for (let i = 0; i < Math.min(20, reps); i++) await f(); // warm-up
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    await f();
    t.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return median(t);
}

async function measure(port: number, ptx: Buffer, reps: number): Promise<Record<string, number>> {
  const c = await TestClient.session(port);
  try {
    const { module } = await c.loadModule(ptx, 'ptx');
    const k = c.kernelIndex(module, 'nop');
    const small = c.alloc(4096);
    const big = c.alloc(4 << 20);
    const page = new Uint8Array(4096);
    const mib4 = new Uint8Array(4 << 20);
    const out: Record<string, number> = {};
    out['sync (us)'] = await time(reps, () => c.sync());
    out['launch+sync (us)'] = await time(reps, async () => {
      c.launch(module, k, [1], [32], [0]);
      await c.sync();
    });
    const burst = 200;
    out['launch, pipelined (us/launch)'] = (await time(Math.max(5, reps / 20), async () => {
      for (let i = 0; i < burst; i++) c.launch(module, k, [1], [32], [0]);
      await c.sync();
    })) / burst;
    out['htod 4 KiB+sync (us)'] = await time(reps, async () => {
      c.htod(small, page);
      await c.sync();
    });
    out['dtoh 4 KiB (us)'] = await time(reps, async () => {
      await c.dtoh(small, 4096);
    });
    out['htod 4 MiB+sync (ms)'] = (await time(Math.max(5, reps / 20), async () => {
      c.htod(big, mib4);
      await c.sync();
    })) / 1000;
    out['dtoh 4 MiB (ms)'] = (await time(Math.max(5, reps / 20), async () => {
      await c.dtoh(big, 4 << 20);
    })) / 1000;
    return out;
  } finally {
    c.close();
  }
}

async function direct(backend: Backend, reps: number): Promise<Record<string, number>> {
  const d = backend.devices[0];
  const ctx = d.createContextAsync ? await d.createContextAsync({ vaSize: 64 << 20 }) : d.createContext({ vaSize: 64 << 20 });
  try {
    const a = ctx.va.base;
    ctx.alloc(a, 4 << 20);
    const page = new Uint8Array(4096);
    const mib4 = new Uint8Array(4 << 20);
    const out: Record<string, number> = {};
    out['synchronize (us)'] = await time(reps, () => ctx.synchronize(null));
    out['query, no printf marker (us)'] = await time(reps, async () => {
      if (ctx.queryAsync) await ctx.queryAsync(null);
      else ctx.query(null);
    });
    const burst = 200;
    out['memset, pipelined (us/op)'] = (await time(Math.max(5, reps / 20), async () => {
      for (let i = 0; i < burst; i++) ctx.enqueueMemset(null, a, i, 4, 1024, 1, 0);
      await ctx.synchronize(null);
    })) / burst;
    out['write 4 KiB+sync (us)'] = await time(reps, async () => {
      ctx.enqueueWrite(null, a, page);
      await ctx.synchronize(null);
    });
    out['read 4 KiB (us)'] = await time(reps, () => ctx.enqueueRead(null, a, page));
    out['write 4 MiB+sync (ms)'] = (await time(Math.max(5, reps / 20), async () => {
      ctx.enqueueWrite(null, a, mib4);
      await ctx.synchronize(null);
    })) / 1000;
    out['read 4 MiB (ms)'] = (await time(Math.max(5, reps / 20), () => ctx.enqueueRead(null, a, mib4))) / 1000;
    return out;
  } finally {
    ctx.destroy();
  }
}

function table(results: Record<string, Record<string, number>>): void {
  const names = Object.keys(results);
  const rows = Object.keys(results[names[0]]);
  console.log(['op', ...names].join(' | '));
  for (const r of rows) console.log([r, ...names.map((n) => results[n][r].toFixed(r.includes('(ms)') ? 2 : 1))].join(' | '));
}

async function main(): Promise<void> {
  const reps = Number(process.argv[2] ?? 300);
  ensureIntercept();
  const dir = mkdtempSync(join(tmpdir(), 'rgpu-worker-latency-'));
  writeFileSync(join(dir, 'k.cu'), KERNEL);
  execFileSync('nvcc', ['-ptx', '-arch=sm_75', '-o', join(dir, 'k.ptx'), join(dir, 'k.cu')]);
  const ptx = Buffer.from(readFileSync(join(dir, 'k.ptx'), 'utf8') + '\0');
  const inner = await serve(['--devices', 'emulated:T4x3']);
  const results: Record<string, Record<string, number>> = {};
  try {
    for (const [name, args] of [['in-process', ['--cuda-in-process']], ['worker', []], ['in-process again', ['--cuda-in-process']], ['worker again', []]] as const) {
      const outer = await serveCudaOver(inner.port, ['--mem-quota', '256M', ...args]);
      try {
        results[name] = await measure(outer.port, ptx, reps);
      } finally {
        await stop(outer);
      }
    }
  } finally {
    await stop(inner);
    rmSync(dir, { recursive: true, force: true });
  }
  console.log('through the chain (client -> outer server -> intercept -> inner emulated server):');
  table(results);

  const fakeDir = mkdtempSync(join(tmpdir(), 'rgpu-worker-latency-fake-'));
  const lib = join(fakeDir, 'libfakecuda.so');
  try {
    execFileSync('gcc', ['-shared', '-fPIC', '-O1', '-o', lib, join(__dirname, '../../../../test/gpu-runtime/cuda/fake_libcuda.c')]);
    const inProc = createCudaBackend({ libraryPath: lib });
    const worker = await createCudaWorkerBackend({ libraryPath: lib });
    const direct2: Record<string, Record<string, number>> = {};
    try {
      direct2['in-process'] = await direct(inProc, reps);
      direct2['worker'] = await direct(worker, reps);
      direct2['in-process again'] = await direct(inProc, reps);
      direct2['worker again'] = await direct(worker, reps);
    } finally {
      await inProc.close();
      await worker.close();
    }
    console.log('\nDeviceContext calls over the fake libcuda:');
    table(direct2);
  } finally {
    rmSync(fakeDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
