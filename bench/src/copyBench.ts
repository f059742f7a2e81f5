// `node out/bench/src/copyBench.js [ROUNDS]`: only the bulk-copy figures of `npm run bench`, in rounds
// that alternate raw TCP, the proxy route and the direct route, so each copy figure has a raw limit taken
// seconds before it. For working on the data path: one round takes ~20 s instead of the whole bench's minutes.
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { BenchBuild } from './build';
import { PathBench } from './pathBench';
import { killAll } from './proc';
import { RawProbe } from './rawLimits';
import { repoPaths, snapshotIntercept, startServer } from './stack';

const ROOT = resolve(__dirname, '..', '..', '..');

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 3);
  const build = new BenchBuild(join(ROOT, 'bench'));
  const paths = snapshotIntercept(repoPaths(ROOT), build.dir);
  await build.prebuild(['tcp_bw'], ['path_bench'], []);
  const server = await startServer(paths, 'emulated:T4x2');
  const raw = new RawProbe(build);
  const bench = new PathBench(build, paths);
  const f = (x: number): string => x.toFixed(0).padStart(5);
  try {
    await bench.probe(server);
    console.log('round load  rawTCP | HtoD proxy      direct      | DtoH proxy      direct');
    for (let r = 1; r <= rounds; r++) {
      const load = loadavg()[0].toFixed(1);
      const tcp = (await raw.bandwidth()).MBps;
      const p = await bench.copy('proxy', server);
      const d = await bench.copy('direct', server);
      const cell = (v: number): string => `${f(v)} (${(v / tcp).toFixed(2)}x)`;
      console.log(`${String(r).padStart(5)} ${load.padStart(4)} ${f(tcp)}  | ${cell(p.h2d_MBps)} ${cell(d.h2d_MBps)} | ${cell(p.d2h_MBps)} ${cell(d.d2h_MBps)}`);
    }
  } finally {
    await server.stop();
    build.dispose();
  }
}

process.on('SIGINT', () => {
  killAll();
  process.exit(130);
});
main().catch((e) => {
  console.error(e);
  killAll();
  process.exit(1);
});
