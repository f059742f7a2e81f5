// Compiles the bench's C and CUDA programs into one temporary directory per run, so every figure comes
// from binaries built on this machine with this compiler, at this moment.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './proc';

export class BuildError extends Error {
  readonly code = 'RGPU_ERR_BENCH_BUILD';
  constructor(message: string) {
    super(message);
    this.name = 'BuildError';
  }
}

export class BenchBuild {
  readonly dir = mkdtempSync(join(tmpdir(), 'rgpu-bench-'));
  private readonly built = new Map<string, Promise<string>>();

  constructor(readonly benchRoot: string) {}

  private once<T extends string>(key: string, make: () => Promise<T>): Promise<T> {
    if (!this.built.has(key)) {
      const p = make();
      p.catch(() => undefined); // a prebuild nobody awaits yet must not be an unhandled rejection
      this.built.set(key, p);
    }
    return this.built.get(key) as Promise<T>;
  }

  /** gcc -O2 bench/c/NAME.c → absolute path of the executable (built once per run). */
  c(name: string): Promise<string> {
    return this.once(`c:${name}`, () => this.gcc(name));
  }

  /** nvcc -O2 bench/cuda/NAME.cu (default target, default static cudart) → executable path. */
  cuda(name: string): Promise<string> {
    return this.once(`cuda:${name}`, () => this.nvcc(name));
  }

  /** nvcc -ptx: the PTX text the fatbin carries, for static instruction counts. */
  ptx(name: string): Promise<string> {
    return this.once(`ptx:${name}`, () => this.nvccPtx(name));
  }

  /** Starts every build at once, before anything is timed, so compilers never run beside a measurement. */
  async prebuild(c: string[], cuda: string[], ptx: string[]): Promise<void> {
    await Promise.allSettled([...c.map((n) => this.c(n)), ...cuda.map((n) => this.cuda(n)), ...ptx.map((n) => this.ptx(n))]);
  }

  private async gcc(name: string): Promise<string> {
    const out = join(this.dir, name);
    const r = await run('gcc', ['-O2', '-Wall', '-o', out, join(this.benchRoot, 'c', `${name}.c`)], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new BuildError(`gcc ${name}.c failed: ${r.stderr.trim().slice(-400)}`);
    return out;
  }

  private async nvcc(name: string): Promise<string> {
    const out = join(this.dir, name);
    const r = await run('nvcc', ['-O2', '-o', out, join(this.benchRoot, 'cuda', `${name}.cu`)], { timeoutMs: 180_000 });
    if (r.code !== 0) throw new BuildError(`nvcc ${name}.cu failed: ${r.stderr.trim().slice(-400)}`);
    return out;
  }

  private async nvccPtx(name: string): Promise<string> {
    const out = join(this.dir, `${name}.ptx`);
    const r = await run('nvcc', ['-ptx', '-O2', '-o', out, join(this.benchRoot, 'cuda', `${name}.cu`)], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new BuildError(`nvcc -ptx ${name}.cu failed: ${r.stderr.trim().slice(-400)}`);
    return readFileSync(out, 'utf8');
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
