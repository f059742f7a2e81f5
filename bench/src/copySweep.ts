// `node out/bench/src/copySweep.js [KIB,KIB,...]`: copy rates by size, 4 KiB to 1 MiB by default, through the
// proxy with the data lane (the default), through the proxy's relay (REMOTE_GPU_LANE=0) and straight to the
// server. Not part of `npm run bench`: it is how the lane's thresholds (reads from 4 KiB, writes from 256 KiB;
// gpu-runtime/intercept/src/rgpu.h) were chosen, and what to run again before moving them.
import { join, resolve } from 'node:path';
import { BenchBuild } from './build';
import { PathBench, type Route } from './pathBench';
import { killAll } from './proc';
import { repoPaths, snapshotIntercept, startServer } from './stack';

const ROOT = resolve(__dirname, '..', '..', '..');

type Row = [number, number, number];

async function main(): Promise<void> {
  const sizes = process.argv[2] ?? '4,16,64,128,256,1024';
  const build = new BenchBuild(join(ROOT, 'bench'));
  const paths = snapshotIntercept(repoPaths(ROOT), build.dir);
  await build.prebuild([], ['path_bench'], []);
  const server = await startServer(paths, 'emulated:T4');
  const bench = new PathBench(build, paths);
  const routes: [string, Route, Record<string, string>][] = [
    ['proxy (lane)', 'proxy', {}],
    ['proxy relay', 'proxy', { REMOTE_GPU_LANE: '0' }],
    ['direct', 'direct', {}],
  ];
  try {
    await bench.probe(server);
    const by = new Map<string, Row[]>();
    for (const [name, route, env] of routes) {
      const j = await bench.run(route, server.url, ['--sweep', sizes], 300_000, env);
      by.set(name, j.sweep as Row[]);
    }
    console.log(`size KiB | ${routes.map(([n]) => `${n} HtoD/DtoH MB/s`.padEnd(30)).join(' | ')}`);
    const rows = by.get(routes[0][0]) ?? [];
    rows.forEach(([kib], i) => {
      const cells = routes.map(([n]) => {
        const r = by.get(n)?.[i];
        return (r ? `${r[1].toFixed(0)} / ${r[2].toFixed(0)}` : '-').padEnd(30);
      });
      console.log(`${String(kib).padStart(8)} | ${cells.join(' | ')}`);
    });
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
