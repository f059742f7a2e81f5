// Emulator section: thread-instructions per second of the emulated device on a tiled matrix multiply and
// a reduction (bench/cuda/emu_bench.cu, run through the intercept straight to a server with emulated
// devices), and the emulated matmul's time against a plain C -O2 triple loop on the same machine.
import { cpus } from 'node:os';
import { BenchBuild } from './build';
import { cpuSeconds, runJson } from './proc';
import { countThreadInstructions } from './ptxCount';
import { cudaEnv, Paths, requireIntercept, RunningServer } from './stack';

export const MATMUL_N = 256;
const TILE = 16;
const REDUCE_BLOCKS = 64;
const REDUCE_BLOCK = 256;
const REDUCE_PER_THREAD = 256;
const REPS = 5;

export interface EmulatorFigures {
  emu_matmul_ms: number;
  emu_reduce_ms: number;
  emu_matmul_thread_instructions: number;
  emu_reduce_thread_instructions: number;
  /** "static PTX estimate" unless the emulator reports its own count. */
  instruction_count_source: string;
  emu_matmul_tips: number;
  emu_reduce_tips: number;
  /**
   * Server CPU-seconds per wall-second during the emulator run: above 1 if the emulator used several
   * cores, below 1 if the loaded VM gave it less than one.
   */
  emu_server_cpu_share: number;
  emu_matmul_tips_per_core: number;
  emu_reduce_tips_per_core: number;
  c_matmul_ms: number;
  emu_matmul_vs_c_ratio: number;
}

export interface CMatmul {
  ms: number;
  checksum: number;
}

/** The reference: bench/c/matmul.c, best of 5, same size and inputs as the emulated kernel. */
export async function measureCMatmul(build: BenchBuild): Promise<CMatmul> {
  const c = await runJson(await build.c('matmul'), [String(MATMUL_N), '5'], 'matmul.c', { timeoutMs: 60_000 });
  return { ms: Number(c.ms), checksum: Number(c.checksum) };
}

export async function measureEmulator(build: BenchBuild, paths: Paths, server: RunningServer, c: CMatmul): Promise<EmulatorFigures> {
  requireIntercept(paths);
  const [bin, ptx] = await Promise.all([build.cuda('emu_bench'), build.ptx('emu_bench')]);
  const cpu0 = server.pid ? cpuSeconds(server.pid) : 0;
  const t0 = performance.now();
  const e = await runJson(bin, [String(MATMUL_N), String(REDUCE_BLOCKS), String(REDUCE_PER_THREAD), String(REPS)], 'emu_bench', {
    env: cudaEnv(paths, { REMOTE_GPU_SERVER: server.url }),
    timeoutMs: 150_000,
  });
  const wall = (performance.now() - t0) / 1e3;
  // Per core = per CPU-second the server actually got; on a loaded VM that is well below one per second.
  const share = server.pid ? Math.min(Math.max((cpuSeconds(server.pid) - cpu0) / wall, 0.05), cpus().length) : 1;
  if (e.matmul_ok !== true) throw new Error('emulated matmul gave a wrong result');
  if (e.reduce_ok !== true) throw new Error('emulated reduction gave a wrong result');
  if (Math.abs(Number(e.checksum) - c.checksum) > 1e-4 * Math.abs(c.checksum)) {
    throw new Error(`emulated matmul checksum ${e.checksum} differs from the C loop's ${c.checksum}`);
  }
  const mmBlocks = (MATMUL_N / TILE) ** 2;
  const mm = countThreadInstructions(ptx, 'matmul_tiled', { block: [TILE, TILE, 1], loopTrips: [MATMUL_N / TILE] });
  const rd = countThreadInstructions(ptx, 'reduce_sum', { block: [REDUCE_BLOCK, 1, 1], loopTrips: [REDUCE_PER_THREAD] });
  const mmCount = mm.perBlock * mmBlocks;
  const rdCount = rd.perBlock * REDUCE_BLOCKS;
  const mmMs = Number(e.matmul_ms);
  const rdMs = Number(e.reduce_ms);
  return {
    emu_matmul_ms: mmMs,
    emu_reduce_ms: rdMs,
    emu_matmul_thread_instructions: mmCount,
    emu_reduce_thread_instructions: rdCount,
    instruction_count_source: 'static PTX estimate (bench/src/ptxCount.ts): per-thread PTX instructions x loop trips x threads; the emulator exposes no counter',
    emu_matmul_tips: mmCount / (mmMs / 1e3),
    emu_reduce_tips: rdCount / (rdMs / 1e3),
    emu_server_cpu_share: share,
    emu_matmul_tips_per_core: mmCount / (mmMs / 1e3) / share,
    emu_reduce_tips_per_core: rdCount / (rdMs / 1e3) / share,
    c_matmul_ms: c.ms,
    emu_matmul_vs_c_ratio: mmMs / c.ms,
  };
}
