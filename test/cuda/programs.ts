// Builds and runs the test programs of the intercept library: CUDA sources with nvcc, C sources with gcc,
// each cached in os.tmpdir() by a hash of compiler, flags and source, so a re-run compiles nothing.
import { startServer, type RunningServer } from '../../gpu-runtime/server/src/main';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const REPO = path.resolve(__dirname, '../../..');
export const INTERCEPT_DIR = path.join(REPO, 'gpu-runtime/intercept/build');
const CACHE = path.join(os.tmpdir(), 'rgpu-test-bin');
const CUDA_INC = '/usr/local/cuda/include';

let built = false;

/** Makes sure build/libcuda.so.1 is current (make is a no-op when it is). */
export function ensureIntercept(): void {
  if (built) return;
  execFileSync('make', ['-s', '-C', path.join(REPO, 'gpu-runtime/intercept')], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (!fs.existsSync(path.join(INTERCEPT_DIR, 'libcuda.so.1'))) throw new Error('make did not produce libcuda.so.1');
  built = true;
}

async function cached(compiler: string, src: string, flags: string[], build: (out: string) => Promise<unknown>): Promise<string> {
  const text = fs.readFileSync(src);
  const key = createHash('sha256').update(compiler).update('\0').update(flags.join('\0')).update('\0').update(text).digest('hex').slice(0, 24);
  const out = path.join(CACHE, `${path.basename(src).replace(/\.\w+$/, '')}-${key}`);
  if (fs.existsSync(out)) return out;
  fs.mkdirSync(CACHE, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  await build(tmp);
  fs.renameSync(tmp, out); // atomic: concurrent runs never see a half-written binary
  return out;
}

/** nvcc SRC (a path relative to test/cuda) with extra flags; the default build carries sm_75 SASS and compute_75 PTX. */
export function nvcc(src: string, flags: string[] = []): Promise<string> {
  const file = path.join(REPO, 'test/cuda', src);
  return cached('nvcc', file, flags, (out) => execFileP('nvcc', ['-o', out, file, ...flags], { maxBuffer: 1 << 24 }));
}

/** gcc SRC (relative to the repo) linked against nothing CUDA-specific except what flags add. */
/**
 * The fixture of the program suites: a server with emulated `devices` and the programs built, two at a time
 * (the machine has two CPUs). `jobs`: [name, source, nvcc flags]. Binaries are keyed by name.
 */
export async function serverWithPrograms(devices: string, jobs: [string, string, string[]?][]): Promise<{ server: RunningServer; url: string; bins: Record<string, string> }> {
  ensureIntercept();
  const server = await startServer({ port: 0, devices });
  const bins: Record<string, string> = {};
  try {
    for (let i = 0; i < jobs.length; i += 2) {
      await Promise.all(jobs.slice(i, i + 2).map(async ([name, src, flags]) => (bins[name] = await nvcc(src, flags ?? []))));
    }
  } catch (e) {
    await server.close();
    throw e;
  }
  return { server, url: `tcp://127.0.0.1:${server.address.port}`, bins };
}

export function gcc(src: string, flags: string[] = []): Promise<string> {
  const file = path.join(REPO, src);
  return cached('gcc', file, flags, (out) => execFileP('gcc', ['-O1', '-g', `-I${CUDA_INC}`, '-o', out, file, ...flags], { maxBuffer: 1 << 24 }));
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  /** Called with the child once it runs (to write stdin, watch stdout). */
  onSpawn?: (child: import('node:child_process').ChildProcess) => void;
}

/** Environment that points a program at a server and at the intercept library, and at nothing else. */
export function interceptEnv(server: string, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  delete env.REMOTE_GPU_PROXY;
  delete env.REMOTE_GPU_TRACE;
  return { ...env, REMOTE_GPU_SERVER: server, LD_LIBRARY_PATH: INTERCEPT_DIR, ...extra };
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (opts.onSpawn) opts.onSpawn(child);
    else child.stdin.end();
  });
}

/** Throws with the program's output when it did not exit 0. */
export function expectOk(r: RunResult, what: string): void {
  if (r.code !== 0) throw new Error(`${what} exited with ${r.code ?? r.signal}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}
