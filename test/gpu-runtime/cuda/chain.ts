// A two-server chain for the CUDA backend without a GPU: an outer `rgpu serve --devices cuda` whose libcuda is
// OUR intercept library, talking to an inner emulated server.
import { ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';

export const REPO = resolve(__dirname, '../../../..');
export const LIB = join(REPO, 'gpu-runtime/intercept/build/libcuda.so.1');
export const CLI = join(REPO, 'out/gpu-runtime/cli/src/main.js');

export interface Served {
  child: ChildProcess;
  port: number;
  /** What the server process wrote to its stdout. */
  stdout: string[];
}

export function serve(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Served> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [CLI, 'serve', '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    const stdout: string[] = [];
    child.stdout!.setEncoding('utf8').on('data', (s: string) => stdout.push(s));
    let err = '';
    const timer = setTimeout(() => fail(new Error(`server did not start: ${err}`)), 30000);
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      err += s;
      const m = /listening on [^\s:]+:(\d+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        ok({ child, port: Number(m[1]), stdout });
      }
    });
    child.on('exit', (code) => fail(new Error(`server exited (${code}): ${err}`)));
  });
}

/** The outer server of the chain: `--devices cuda` over the intercept, pointed at the inner server. */
export function serveCudaOver(innerPort: number, args: string[] = []): Promise<Served> {
  return serve(['--devices', 'cuda', ...args], { ...process.env, RGPU_LIBCUDA: LIB, REMOTE_GPU_SERVER: `tcp://127.0.0.1:${innerPort}` });
}

export function stop(s: Served | undefined): Promise<void> {
  if (!s || s.child.exitCode !== null) return Promise.resolve();
  return new Promise((r) => {
    s.child.once('exit', () => r());
    s.child.kill('SIGTERM');
  });
}
