// Runs the built `rgpu` CLI as a child process without blocking the test's event loop (the fake pool
// lives in the test process and must keep answering).
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

export const RGPU = path.resolve(__dirname, '..', '..', '..', 'bin', 'rgpu');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; onSpawn?: (c: ChildProcess) => void; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RGPU, ...args], { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`rgpu ${args.join(' ')} timed out; stderr: ${stderr}`));
    }, opts.timeoutMs ?? 90000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    opts.onSpawn?.(child);
  });
}
