// Child-process helpers for the bench: run a probe and parse the one JSON line it prints, or start a
// long-lived helper and read its first stdout line (a port, an address).
import { ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { forEachLine } from '../../kernel-proxy/src/lines';

export class BenchProcessError extends Error {
  readonly code = 'RGPU_ERR_BENCH_PROCESS';
  /** The last lines the process printed, for a short reason in the table. */
  constructor(message: string, readonly tail: string[] = []) {
    super(message);
    this.name = 'BenchProcessError';
  }
}

/** Every child the bench started and that is still running, so an interrupted bench leaves none behind. */
const live = new Set<ChildProcess>();

function track<T extends ChildProcess>(child: T): T {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** utime + stime of a process, all threads, in seconds, from /proc (Linux); NaN without a pid. */
export function cpuSeconds(pid: number | undefined): number {
  if (!pid) return NaN;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // fields 14 and 15; USER_HZ is 100 on Linux
}

/** SIGKILL every child still running (the bench is being interrupted). */
export function killAll(): void {
  for (const c of live) c.kill('SIGKILL');
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  cwd?: string;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = track(spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-20000)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      stderr += `\n[bench] killed after ${opts.timeoutMs} ms`;
    }, opts.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new BenchProcessError(`${cmd}: ${e.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

/** The last line of stdout that parses as a JSON object, or an error naming what the process said. */
export function lastJson(r: RunResult, what: string): Record<string, unknown> {
  const lines = r.stdout.trim().split('\n').reverse();
  for (const l of lines) {
    const t = l.trim();
    if (!t.startsWith('{')) continue;
    try {
      return JSON.parse(t) as Record<string, unknown>;
    } catch {
      // a device printf line that happens to start with '{': keep looking
    }
  }
  const tail = (r.stderr.trim().split('\n').slice(-3).join(' | ') || 'no output').slice(0, 400);
  throw new BenchProcessError(`${what} exited ${r.code} without a JSON result: ${tail}`);
}

export async function runJson(cmd: string, args: string[], what: string, opts: RunOptions = {}): Promise<Record<string, unknown>> {
  const r = await run(cmd, args, opts);
  const j = lastJson(r, what);
  if (typeof j.error === 'string') throw new BenchProcessError(`${what}: ${j.error}`);
  if (r.code !== 0) throw new BenchProcessError(`${what} exited ${r.code}: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`);
  return j;
}

export interface Helper {
  child: ChildProcess;
  /** The line that signalled readiness. */
  firstLine: string;
  stop(): Promise<void>;
}

/**
 * Starts a helper process and resolves with the first line (stdout or stderr) matching `ready`
 * (default: the first stdout line), e.g. a port number or "listening on tcp://127.0.0.1:40123".
 */
export function startHelper(cmd: string, args: string[], opts: RunOptions & { ready?: RegExp; onLine?: (l: string) => void } = {}): Promise<Helper> {
  return new Promise((resolve, reject) => {
    const child = track(spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] }));
    const tail: string[] = [];
    let done = false;
    const timeoutMs = opts.timeoutMs ?? 20_000;
    const timer = setTimeout(() => fail(`not ready within ${timeoutMs} ms`), timeoutMs);
    const fail = (why: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new BenchProcessError(`${cmd} ${args.join(' ')}: ${why}; output: ${tail.join(' | ').slice(-600)}`, [why, ...tail]));
    };
    const onLine = (line: string, fromStdout: boolean): void => {
      opts.onLine?.(line);
      if (done) return;
      tail.push(line);
      if (tail.length > 10) tail.shift();
      if (opts.ready ? !opts.ready.test(line) : !fromStdout) return;
      done = true;
      clearTimeout(timer);
      resolve({
        child,
        firstLine: line.trim(),
        stop: () =>
          new Promise<void>((res) => {
            if (child.exitCode !== null || child.signalCode !== null) return res();
            child.once('exit', () => res());
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), 3000).unref();
          }),
      });
    };
    forEachLine(child.stdout, (l) => onLine(l, true));
    forEachLine(child.stderr, (l) => onLine(l, false));
    child.on('error', (e) => fail(e.message));
    child.on('exit', (code, sig) => fail(`exited (${sig ?? code}) before it was ready`));
  });
}

/** Starts a helper that signals readiness some other way (a socket file appearing); output is drained. */
export function spawnHelper(cmd: string, args: string[], opts: RunOptions = {}): Helper & { output: string[] } {
  const child = track(spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] }));
  const output: string[] = [];
  const keep = (l: string): void => {
    output.push(l);
    if (output.length > 20) output.shift();
  };
  forEachLine(child.stdout, keep);
  forEachLine(child.stderr, keep);
  child.on('error', (e) => keep(`spawn error: ${e.message}`));
  return {
    child,
    firstLine: '',
    output,
    stop: () =>
      new Promise<void>((res) => {
        if (child.exitCode !== null || child.signalCode !== null) return res();
        child.once('exit', () => res());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}
