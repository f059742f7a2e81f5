// `node out/bench/src/copySweep.js [KIB,KIB,...]`: copy rates by size, 4 KiB to 1 MiB by default, through the
// proxy with the data lane (the default), through the proxy's relay (REMOTE_GPU_LANE=0) and straight to the
// server. Not part of `npm run bench`: it is how the lane's thresholds (reads from 4 KiB, writes from 256 KiB;
// gpu-runtime/intercept/src/rgpu.h) were chosen, and what to run again before moving them.
import { runPartial } from './partial';
import { PathBench, type Route } from './pathBench';

type Row = [number, number, number];

const sizes = process.argv[2] ?? '4,16,64,128,256,1024';
const routes: [string, Route, Record<string, string>][] = [
  ['proxy (lane)', 'proxy', {}],
  ['proxy relay', 'proxy', { REMOTE_GPU_LANE: '0' }],
  ['direct', 'direct', {}],
];

runPartial({ cuda: ['path_bench'], devices: 'emulated:T4' }, async ({ build, paths, server }) => {
  const bench = new PathBench(build, paths);
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
});
