// `node out/bench/src/copyBench.js [ROUNDS]`: only the bulk-copy figures of `npm run bench`, in rounds
// that alternate raw TCP, the proxy route and the direct route, so each copy figure has a raw limit taken
// seconds before it. For working on the data path: one round takes ~20 s instead of the whole bench's minutes.
import { loadavg } from 'node:os';
import { runPartial } from './partial';
import { PathBench } from './pathBench';
import { cpuSeconds } from './proc';
import { RawProbe } from './rawLimits';

/** Bytes one copy run moves: path_bench copies 256 MiB three times each way (one warm-up, two timed). */
const RUN_MB = (6 * 256 * 2 ** 20) / 1e6;

const rounds = Number(process.argv[2] ?? 3);

runPartial({ c: ['tcp_bw'], cuda: ['path_bench'], devices: 'emulated:T4x2' }, async ({ build, paths, server }) => {
  const raw = new RawProbe(build);
  const bench = new PathBench(build, paths);
  const f = (x: number): string => x.toFixed(0).padStart(5);
  await bench.probe(server);
  // Wall-clock figures on this shared VM swing 2-5x with the neighbours' load; the server's CPU per MB
  // moved (both directions together) is steadier, and shows where a change to the server path lands.
  console.log('round load  rawTCP | HtoD proxy      direct      | DtoH proxy      direct      | server us/MB proxy direct');
  for (let r = 1; r <= rounds; r++) {
    const load = loadavg()[0].toFixed(1);
    const tcp = (await raw.bandwidth()).MBps;
    const c0 = cpuSeconds(server.pid);
    const p = await bench.copy('proxy', server);
    const c1 = cpuSeconds(server.pid);
    const d = await bench.copy('direct', server);
    const c2 = cpuSeconds(server.pid);
    const cell = (v: number): string => `${f(v)} (${(v / tcp).toFixed(2)}x)`;
    const us = (s: number): string => f((s * 1e6) / RUN_MB);
    console.log(`${String(r).padStart(5)} ${load.padStart(4)} ${f(tcp)}  | ${cell(p.h2d_MBps)} ${cell(d.h2d_MBps)} | ${cell(p.d2h_MBps)} ${cell(d.d2h_MBps)} | ${us(c1 - c0)} ${us(c2 - c1)}`);
  }
});
