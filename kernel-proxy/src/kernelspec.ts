/**
 * The `remote-gpu` Jupyter kernelspec: building kernel.json, installing it where Jupyter looks
 * (like `python -m ipykernel install`), listing and removing it. `rgpu kernel …` lands in runKernelCommand.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { KernelSetupError, KernelUsageError } from './kernelErrors';
import { findKernelPython } from './pythonLocator';
import { repoRoot } from './repoPaths';

export const DEFAULT_KERNEL_NAME = 'remote-gpu';

export interface KernelSpecOptions {
  name?: string;
  pool?: string;        // pool URL; absent = the proxy's embedded emulated server
  gpu?: string;         // GPU type
  tokenFile?: string;   // path only: the token itself never enters kernel.json (GET /api/kernelspecs shows it all)
  socket?: string;      // proxy socket; absent = the per-user default
  python?: string;      // interpreter with ipykernel; absent = located now
}

export interface KernelSpecJson {
  argv: string[];
  display_name: string;
  language: string;
  interrupt_mode: 'signal';
  env: Record<string, string>;
  metadata: { remoteGpu: { gpuType?: string; pool?: string } };
}

export function launcherPath(): string {
  return path.join(repoRoot(), 'out', 'kernel-proxy', 'src', 'kernelLauncher.js');
}

export function buildKernelSpec(o: KernelSpecOptions): KernelSpecJson {
  const argv = [process.execPath, launcherPath(), '-f', '{connection_file}'];
  if (o.socket) argv.push('--socket', o.socket);
  if (o.pool) argv.push('--pool', o.pool);
  if (o.gpu) argv.push('--gpu', o.gpu);
  if (o.tokenFile) argv.push('--token-file', path.resolve(o.tokenFile));
  // Found once here so each kernel start skips probing interpreters (~100 ms).
  argv.push('--python', o.python || findKernelPython());
  const display = o.gpu ? `Remote GPU ${o.gpu} (Python 3)` : 'Remote GPU (Python 3)';
  return {
    argv, display_name: display, language: 'python', interrupt_mode: 'signal', env: {},
    metadata: { remoteGpu: { gpuType: o.gpu, pool: o.pool } },
  };
}

/** Jupyter's data dirs in its own search order (JUPYTER_PATH, user, then system prefixes). */
export function jupyterDataDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs: string[] = [];
  if (env.JUPYTER_PATH) dirs.push(...env.JUPYTER_PATH.split(path.delimiter).filter(Boolean));
  dirs.push(env.JUPYTER_DATA_DIR || path.join(env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share'), 'jupyter'));
  dirs.push('/usr/local/share/jupyter', '/usr/share/jupyter');
  return [...new Set(dirs)];
}

export interface InstallTarget { user?: boolean; prefix?: string }

export function kernelsDir(t: InstallTarget, env: NodeJS.ProcessEnv = process.env): string {
  if (t.user && t.prefix) throw new KernelUsageError('--user and --prefix are exclusive');
  if (t.prefix) return path.join(path.resolve(t.prefix), 'share', 'jupyter', 'kernels');
  if (t.user) return path.join(jupyterDataDirs({ ...env, JUPYTER_PATH: '' })[0], 'kernels');
  return '/usr/local/share/jupyter/kernels';   // ipykernel's default (sys.prefix) on Debian
}

function copyLogos(python: string, dest: string): void {
  const r = spawnSync(python, ['-c', 'import ipykernel, os; print(os.path.dirname(ipykernel.__file__))'], { encoding: 'utf8' });
  const res = path.join(r.stdout.trim(), 'resources');
  for (const f of ['logo-32x32.png', 'logo-64x64.png', 'logo-svg.svg']) {
    if (r.status === 0 && fs.existsSync(path.join(res, f))) fs.copyFileSync(path.join(res, f), path.join(dest, f));
  }
}

/** Writes <kernels dir>/<name>/kernel.json (+ logos) and returns the spec directory. */
export function installKernelSpec(o: KernelSpecOptions & InstallTarget): string {
  const name = o.name || DEFAULT_KERNEL_NAME;
  if (!/^[a-zA-Z0-9._-]+$/.test(name)) throw new KernelUsageError(`bad kernel name "${name}" (letters, digits, . _ -)`);
  const python = o.python || findKernelPython();
  const spec = buildKernelSpec({ ...o, python });
  const dir = path.join(kernelsDir(o), name);
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'kernel.json'), JSON.stringify(spec, null, 1) + '\n');
  } catch (e) {
    const hint = (e as NodeJS.ErrnoException).code === 'EACCES' ? ' (use --user or --prefix DIR)' : '';
    throw new KernelSetupError('RGPU_ERR_KERNELSPEC_WRITE', `cannot write ${dir}: ${(e as Error).message}${hint}`, { cause: e });
  }
  copyLogos(python, dir);
  return dir;
}

/** Removes the spec; returns the directory removed, or undefined when there was none. */
export function uninstallKernelSpec(o: { name?: string } & InstallTarget): string | undefined {
  const dir = path.join(kernelsDir(o), o.name || DEFAULT_KERNEL_NAME);
  if (!fs.existsSync(path.join(dir, 'kernel.json'))) return undefined;
  fs.rmSync(dir, { recursive: true, force: true });
  return dir;
}

export interface ListedKernel { name: string; dir: string; displayName: string; remoteGpu: boolean }

/** Every kernelspec Jupyter would see, first found wins (as in jupyter_client). */
export function listKernelSpecs(env: NodeJS.ProcessEnv = process.env): ListedKernel[] {
  const seen = new Map<string, ListedKernel>();
  for (const d of jupyterDataDirs(env)) {
    const kd = path.join(d, 'kernels');
    let names: string[] = [];
    try { names = fs.readdirSync(kd); } catch { continue; }
    for (const n of names.sort()) {
      const f = path.join(kd, n, 'kernel.json');
      if (seen.has(n.toLowerCase()) || !fs.existsSync(f)) continue;
      try {
        const j = JSON.parse(fs.readFileSync(f, 'utf8')) as Partial<KernelSpecJson>;
        const remoteGpu = Array.isArray(j.argv) && j.argv.some((a) => a.endsWith('kernelLauncher.js'));
        seen.set(n.toLowerCase(), { name: n, dir: path.dirname(f), displayName: String(j.display_name ?? n), remoteGpu });
      } catch { /* an unreadable spec is Jupyter's problem to report; skip it here */ }
    }
  }
  return [...seen.values()];
}

function parseFlags(argv: string[]): KernelSpecOptions & InstallTarget {
  const o: KernelSpecOptions & InstallTarget = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new KernelUsageError(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--user': o.user = true; break;
      case '--prefix': o.prefix = value(); break;
      case '--name': o.name = value(); break;
      case '--pool': o.pool = value(); break;
      case '--gpu': o.gpu = value(); break;
      case '--token-file': o.tokenFile = value(); break;
      case '--socket': o.socket = value(); break;
      case '--python': o.python = value(); break;
      default: throw new KernelUsageError(`unknown option ${a}`);
    }
  }
  return o;
}

const USAGE = `usage: rgpu kernel install [--user | --prefix DIR] [--name N] [--pool URL] [--gpu TYPE] [--token-file F] [--socket S] [--python PY]
       rgpu kernel uninstall [--user | --prefix DIR] [--name N]
       rgpu kernel list`;

/** `rgpu kernel <install|uninstall|list>`; returns the exit status. */
export async function runKernelCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    switch (sub) {
      case 'install': {
        const dir = installKernelSpec(parseFlags(rest));
        process.stdout.write(`Installed kernelspec ${path.basename(dir)} in ${dir}\n`);
        return 0;
      }
      case 'uninstall': {
        const o = parseFlags(rest);
        const dir = uninstallKernelSpec(o);
        if (!dir) { process.stderr.write(`no kernelspec ${o.name || DEFAULT_KERNEL_NAME} in ${kernelsDir(o)}\n`); return 1; }
        process.stdout.write(`Removed ${dir}\n`);
        return 0;
      }
      case 'list': {
        if (rest.length) throw new KernelUsageError('list takes no options (set JUPYTER_PATH to add directories)');
        const ks = listKernelSpecs();
        process.stdout.write('Available kernels:\n');
        const w = Math.max(4, ...ks.map((k) => k.name.length));
        for (const k of ks) process.stdout.write(`  ${k.name.padEnd(w)}  ${k.dir}${k.remoteGpu ? '  (remote GPU)' : ''}\n`);
        return 0;
      }
      case undefined: case '-h': case '--help': case 'help':
        process.stdout.write(USAGE + '\n');
        return sub ? 0 : 2;
      default:
        throw new KernelUsageError(`unknown subcommand "${sub}"\n${USAGE}`);
    }
  } catch (e) {
    if (e instanceof KernelSetupError) { process.stderr.write(`rgpu kernel: ${e.message}\n`); return 2; }
    throw e;
  }
}
