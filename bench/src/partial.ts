// The frame of the partial benches (copyBench, copySweep, emuOnly), which each measure one part of the whole
// bench in seconds: build what the script names, start one server with emulated devices, run its body, and
// always stop the server and remove the build, also when the body fails or the user presses Ctrl-C.
import { join, resolve } from 'node:path';
import { BenchBuild } from './build';
import { killAll } from './proc';
import { repoPaths, snapshotIntercept, startServer, type Paths, type RunningServer } from './stack';

const ROOT = resolve(__dirname, '..', '..', '..');

export interface PartialBench {
  build: BenchBuild;
  paths: Paths;
  server: RunningServer;
}

export interface PartialOptions {
  /** bench/c programs, bench/cuda programs and bench/cuda PTX the body needs, built before it runs. */
  c?: string[];
  cuda?: string[];
  ptx?: string[];
  devices: string;
}

async function run(o: PartialOptions, body: (b: PartialBench) => Promise<void>): Promise<void> {
  const build = new BenchBuild(join(ROOT, 'bench'));
  try {
    const paths = snapshotIntercept(repoPaths(ROOT), build.dir);
    await build.prebuild(o.c ?? [], o.cuda ?? [], o.ptx ?? []);
    const server = await startServer(paths, o.devices);
    try {
      await body({ build, paths, server });
    } finally {
      await server.stop();
    }
  } finally {
    build.dispose();
  }
}

/** Runs a partial bench as the script's main: exit status 1 on failure, 130 on Ctrl-C, no child left behind. */
export function runPartial(o: PartialOptions, body: (b: PartialBench) => Promise<void>): void {
  process.on('SIGINT', () => {
    killAll();
    process.exit(130);
  });
  run(o, body).catch((e) => {
    console.error(e);
    killAll();
    process.exit(1);
  });
}
