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

  /** gcc -O2 bench/c/NAME.c → absolute path of the executable (built once per run). */
  c(name: string): Promise<string> {
    const key = `c:${name}`;
    if (!this.built.has(key)) this.built.set(key, this.gcc(name));
    return this.built.get(key)!;
  }

  private async gcc(name: string): Promise<string> {
    const out = join(this.dir, name);
    const r = await run('gcc', ['-O2', '-Wall', '-o', out, join(this.benchRoot, 'c', `${name}.c`)], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new BuildError(`gcc ${name}.c failed: ${r.stderr.trim().slice(-400)}`);
    return out;
  }

  /** nvcc -O2 bench/cuda/NAME.cu (default target, default static cudart) → executable path. */
  async cuda(name: string): Promise<string> {
    const out = join(this.dir, name);
    const r = await run('nvcc', ['-O2', '-o', out, join(this.benchRoot, 'cuda', `${name}.cu`)], { timeoutMs: 180_000 });
    if (r.code !== 0) throw new BuildError(`nvcc ${name}.cu failed: ${r.stderr.trim().slice(-400)}`);
    return out;
  }

  /** nvcc -ptx: the PTX text the fatbin carries, for static instruction counts. */
  async ptx(name: string): Promise<string> {
    const out = join(this.dir, `${name}.ptx`);
    const r = await run('nvcc', ['-ptx', '-O2', '-o', out, join(this.benchRoot, 'cuda', `${name}.cu`)], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new BuildError(`nvcc -ptx ${name}.cu failed: ${r.stderr.trim().slice(-400)}`);
    return readFileSync(out, 'utf8');
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
