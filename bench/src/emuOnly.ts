// Only the emulator section of the bench, several times against one server: for before/after comparisons of
// emulator changes without the minutes the whole bench takes. Usage: node out/bench/src/emuOnly.js [runs]
// Prints one line per run and the medians; the server gets RGPU_EMU_* from this process's environment.
import { loadavg } from 'node:os';
import { EmulatorFigures, measureCMatmul, measureEmulator } from './emulatorBench';
import { runPartial } from './partial';
import { median } from './rawLimits';

const runs = Number(process.argv[2] ?? 3);

runPartial({ c: ['matmul'], cuda: ['emu_bench'], ptx: ['emu_bench'], devices: 'emulated:T4x2' }, async ({ build, paths, server }) => {
  const c = await measureCMatmul(build);
  const got: EmulatorFigures[] = [];
  for (let r = 0; r < runs; r++) {
    const f = await measureEmulator(build, paths, server, c);
    got.push(f);
    const G = (v: number): string => (v / 1e9).toFixed(3);
    console.log(`run ${r + 1}: matmul ${G(f.emu_matmul_tips_per_core)} G/core (${G(f.emu_matmul_tips)} wall, ${f.emu_matmul_ms.toFixed(1)} ms, ${f.emu_matmul_vs_c_ratio.toFixed(1)}x C)` +
      `  reduce ${G(f.emu_reduce_tips_per_core)} G/core (${G(f.emu_reduce_tips)} wall, ${f.emu_reduce_ms.toFixed(1)} ms)  share ${f.emu_server_cpu_share.toFixed(2)}  load ${loadavg()[0].toFixed(2)}`);
  }
  const m = (k: keyof EmulatorFigures): string => (median(got.map((f) => f[k] as number)) / 1e9).toFixed(3);
  console.log(`median: matmul ${m('emu_matmul_tips_per_core')} G/core (${m('emu_matmul_tips')} wall)  reduce ${m('emu_reduce_tips_per_core')} G/core (${m('emu_reduce_tips')} wall)`);
});
