/**
 * `rgpu demo` (what `npm start` runs): an emulated GPU pool, a Jupyter server with the remote-gpu kernel,
 * and examples/remote-gpu-demo.ipynb executed through @jupyterlab/services. Cell outputs and a statistics
 * summary go to stdout, progress to stderr; the executed notebook is saved. Exit 0 only if every cell ran.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { installKernelSpec } from '../../../kernel-proxy/src/kernelspec';
import { startOwnedProxy, type OwnedProxy } from '../../../kernel-proxy/src/proxyEnsure';
import { startJupyterServer, type RunningJupyter } from '../../../kernel-proxy/src/jupyterServer';
import { NotebookKernel, outputText, type CellOutput } from '../../../kernel-proxy/src/notebookKernel';
import { quietJupyterClientLogs } from '../../../kernel-proxy/src/quietLogs';
import { interceptDir, repoRoot } from '../../../kernel-proxy/src/repoPaths';
import { proxyRequest } from './proxyRequest';

interface NotebookCell { cell_type: string; source: string | string[]; outputs?: CellOutput[]; execution_count?: number | null; metadata?: Record<string, unknown> }
interface Notebook { cells: NotebookCell[]; metadata: Record<string, unknown>; nbformat: number; nbformat_minor: number }

const USAGE = `usage: rgpu demo [--notebook FILE] [--out FILE] [--gpu TYPE] [--pool URL] [--token-file F]
  Starts an emulated GPU pool (or uses --pool), a Jupyter server with the remote-gpu kernel, executes the
  notebook (default examples/remote-gpu-demo.ipynb) and saves it (default build/remote-gpu-demo.executed.ipynb).`;

const fmtBytes = (n: number) => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(2)} MiB`);

interface StatsLike {
  bytesToDevice?: number; bytesFromDevice?: number;
  ops?: Record<string, { count?: number; bytes?: number; timeMs?: number }>;
  rtt?: { lastMs?: number; p50Ms?: number; p99Ms?: number; samples?: number };
}

export function summarizeStats(s: StatsLike, pingMs: number | undefined): string {
  const ops = Object.entries(s.ops ?? {}).sort((a, b) => (b[1].count ?? 0) - (a[1].count ?? 0));
  const total = ops.reduce((n, [, o]) => n + (o.count ?? 0), 0);
  const lines = [
    `  to device     ${fmtBytes(s.bytesToDevice ?? 0)}`,
    `  from device   ${fmtBytes(s.bytesFromDevice ?? 0)}`,
    `  operations    ${total}${ops.length ? ` (${ops.map(([k, o]) => `${k} ${o.count}`).join(', ')})` : ''}`,
  ];
  if (s.rtt?.samples) lines.push(`  round trip    p50 ${s.rtt.p50Ms?.toFixed(3)} ms, p99 ${s.rtt.p99Ms?.toFixed(3)} ms (${s.rtt.samples} samples)`);
  if (pingMs !== undefined) lines.push(`  ping          ${pingMs.toFixed(3)} ms`);
  return lines.join('\n');
}

const sourceOf = (c: NotebookCell) => (Array.isArray(c.source) ? c.source.join('') : c.source);

export async function runDemo(argv: string[]): Promise<number> {
  let v;
  try {
    v = parseArgs({ args: argv, strict: true, options: {
      notebook: { type: 'string' }, out: { type: 'string' }, gpu: { type: 'string' }, pool: { type: 'string' },
      'token-file': { type: 'string' }, help: { type: 'boolean', short: 'h' } } }).values;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (v.help) { process.stdout.write(USAGE + '\n'); return 0; }
  const root = repoRoot();
  const nbPath = path.resolve(v.notebook ?? path.join(root, 'examples', 'remote-gpu-demo.ipynb'));
  const outPath = path.resolve(v.out ?? path.join(root, 'build', 'remote-gpu-demo.executed.ipynb'));
  const progress = (s: string) => process.stderr.write(`[demo] ${s}\n`);
  const restoreLogs = quietJupyterClientLogs();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-demo-'));
  const socket = path.join(tmp, 'run', 'proxy.sock');
  let proxy: OwnedProxy | undefined;
  let jupyter: RunningJupyter | undefined;
  let kernel: NotebookKernel | undefined;
  let failed = 0;
  try {
    const nb = JSON.parse(fs.readFileSync(nbPath, 'utf8')) as Notebook;
    const lib = path.join(interceptDir(), 'libcuda.so.1');
    if (!fs.existsSync(lib)) throw new Error(`the intercept library ${lib} is not built (npm run build:c)`);
    let t = performance.now();
    progress(v.pool ? `starting kernel-proxy for pool ${v.pool}` : 'starting kernel-proxy with the embedded emulated GPU pool');
    proxy = await startOwnedProxy({ socket, pool: v.pool, gpu: v.gpu, tokenFile: v['token-file'] });
    progress(`proxy ready in ${(performance.now() - t).toFixed(0)} ms (${socket})`);
    const prefix = path.join(tmp, 'prefix');
    const specDir = installKernelSpec({ prefix, socket, gpu: v.gpu });
    progress(`kernelspec installed in ${specDir}`);
    t = performance.now();
    jupyter = await startJupyterServer({ dataDir: path.join(tmp, 'jupyter'), jupyterPath: [path.join(prefix, 'share', 'jupyter')], kernelName: 'remote-gpu' });
    progress(`jupyter-server ready at ${jupyter.baseUrl} in ${(performance.now() - t).toFixed(0)} ms`);
    t = performance.now();
    kernel = await NotebookKernel.start(jupyter.baseUrl, jupyter.token, 'remote-gpu', path.basename(nbPath));
    const startMs = performance.now() - t;
    progress(`remote-gpu kernel started in ${startMs.toFixed(0)} ms`);
    const code = nb.cells.filter((c) => c.cell_type === 'code');
    const timings: string[] = [];
    let n = 0;
    for (const cell of nb.cells) {
      if (cell.cell_type !== 'code') continue;
      n++;
      const src = sourceOf(cell);
      const title = src.split('\n')[0].slice(0, 60);
      progress(`cell ${n}/${code.length}: ${title}`);
      process.stdout.write(`\n── cell ${n} ── ${title}\n`);
      const r = await kernel.execute(src, { timeoutMs: 300000, onOutput: (o) => process.stdout.write(outputText(o)) });
      cell.outputs = r.outputs;
      cell.execution_count = r.executionCount;
      timings.push(`  cell ${n}  ${r.ms.toFixed(0).padStart(6)} ms  ${r.status}`);
      if (r.status !== 'ok') { failed++; progress(`cell ${n} failed`); break; }
    }
    fs.mkdirSync(path.dirname(outPath), { recursive: true });
    fs.writeFileSync(outPath, JSON.stringify(nb, null, 1) + '\n');
    progress(`executed notebook saved to ${outPath}`);
    const ctl = `${socket}.ctl`;
    const stats = await proxyRequest(ctl, 'rgpu/stats') as StatsLike;
    const ping = await proxyRequest(ctl, 'rgpu/ping').then((p) => (p as { rttMs?: number }).rttMs, () => undefined);
    process.stdout.write(`\n── statistics ──\n  kernel start  ${startMs.toFixed(0)} ms\n${timings.join('\n')}\n${summarizeStats(stats, ping)}\n`);
    if (failed) process.stdout.write(`\n${failed} cell(s) failed; the notebook stops at the first error\n`);
    return failed ? 1 : 0;
  } catch (e) {
    progress(`failed: ${e instanceof Error ? e.message : String(e)}`);
    if (proxy && process.env.REMOTE_GPU_TRACE === '1') process.stderr.write(proxy.log());
    return 1;
  } finally {
    progress('shutting down');
    await kernel?.shutdown().catch(() => {});
    await jupyter?.stop();
    await proxy?.stop();
    restoreLogs();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
