// Finding and starting the pieces of our path (intercept library, GPU server, kernel-proxy) for the bench.
// Each piece may be missing while the project is being built; the bench then reports its rows as
// "unavailable: <reason>" instead of a number.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BenchProcessError, Helper, startHelper } from './proc';

export class Unavailable extends Error {
  readonly code = 'RGPU_ERR_BENCH_UNAVAILABLE';
  constructor(message: string) {
    super(message);
    this.name = 'Unavailable';
  }
}

export interface Paths {
  root: string;
  interceptDir: string;
  cliMain: string;
}

export function repoPaths(root: string): Paths {
  return {
    root,
    interceptDir: join(root, 'gpu-runtime', 'intercept', 'build'),
    cliMain: join(root, 'out', 'gpu-runtime', 'cli', 'src', 'main.js'),
  };
}

export function requireIntercept(p: Paths): void {
  if (!existsSync(join(p.interceptDir, 'libcuda.so.1'))) throw new Unavailable(`intercept library ${join(p.interceptDir, 'libcuda.so.1')} not built`);
}

export function requireCli(p: Paths): void {
  if (!existsSync(p.cliMain)) throw new Unavailable(`rgpu CLI ${p.cliMain} not built`);
}

/**
 * Copies libcuda.so.1 into the bench's own directory, so that a rebuild of the intercept in the middle of
 * a run (colleagues rebuild it while they work) cannot mix two builds in one set of figures.
 */
export function snapshotIntercept(p: Paths, dir: string): Paths {
  requireIntercept(p);
  const to = join(dir, 'intercept');
  mkdirSync(to, { recursive: true });
  copyFileSync(join(p.interceptDir, 'libcuda.so.1'), join(to, 'libcuda.so.1'));
  return { ...p, interceptDir: to };
}

/** Environment for a CUDA program that must load our libcuda.so.1 instead of any other. */
export function cudaEnv(p: Paths, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  env.LD_LIBRARY_PATH = [p.interceptDir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  // `rgpu run` puts its own intercept directory first; point it at the same library.
  env.RGPU_INTERCEPT_DIR = p.interceptDir;
  delete env.REMOTE_GPU_TRACE;
  return env;
}


/** The line `rgpu serve` prints once it accepts connections (the same one the proxy's embedded server waits for). */
const LISTEN_READY = /listen\w*\b.*?(?:tcp:\/\/)?(?:\[[^\]]+\]|[\w.-]+):(\d{1,5})\b/i;

export interface RunningServer {
  host: string;
  port: number;
  url: string;
  /** The server process, for its CPU time. */
  pid?: number;
  stop(): Promise<void>;
}

/** `rgpu serve --listen 127.0.0.1:0` in its own process, as the proxy's embedded pool runs it. */
export async function startServer(p: Paths, devices: string): Promise<RunningServer> {
  requireCli(p);
  let h: Helper;
  try {
    h = await startHelper(process.execPath, [p.cliMain, 'serve', '--listen', '127.0.0.1:0', '--devices', devices], { timeoutMs: 20_000, ready: LISTEN_READY });
  } catch (e) {
    const tail = e instanceof BenchProcessError ? e.tail : [];
    throw new Unavailable(`GPU server did not start: ${tail.length ? tail[tail.length - 1] : (e as Error).message}`);
  }
  const m = LISTEN_READY.exec(h.firstLine);
  if (!m) {
    await h.stop();
    throw new Unavailable(`GPU server printed no port: "${h.firstLine}"`);
  }
  const port = Number(m[1]);
  return { host: '127.0.0.1', port, url: `tcp://127.0.0.1:${port}`, pid: h.child.pid, stop: () => h.stop() };
}
