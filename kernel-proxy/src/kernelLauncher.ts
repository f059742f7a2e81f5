/**
 * The `remote-gpu` kernelspec's argv: `node kernelLauncher.js -f {connection_file} [--socket S] [--pool URL]
 * [--gpu TYPE] [--token-file F] [--python PY]`. Makes sure this user's kernel-proxy runs, then starts ipykernel
 * with the intercept libcuda.so.1 first on the library path and `REMOTE_GPU_PROXY` pointing at the proxy.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { KernelSetupError, KernelUsageError } from './kernelErrors';
import { findKernelPython } from './pythonLocator';
import { defaultProxySocket, ensureProxy } from './proxyEnsure';
import { interceptDir, pythonExtensionDir, withShims } from './repoPaths';

export interface LauncherOptions {
  connectionFile: string;
  socket: string;
  pool?: string;
  gpu?: string;
  tokenFile?: string;
  python?: string;
}

export function parseLauncherArgs(argv: string[]): LauncherOptions {
  const o: Partial<LauncherOptions> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new KernelUsageError(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '-f': case '--connection-file': o.connectionFile = value(); break;
      case '--socket': o.socket = value(); break;
      case '--pool': o.pool = value(); break;
      case '--gpu': o.gpu = value(); break;
      case '--token-file': o.tokenFile = value(); break;
      case '--python': o.python = value(); break;
      default: throw new KernelUsageError(`unknown launcher argument ${a}`);
    }
  }
  if (!o.connectionFile) throw new KernelUsageError('usage: kernelLauncher -f CONNECTION_FILE [--socket S] [--pool URL] [--gpu TYPE] [--token-file F]');
  return { socket: o.socket || process.env.REMOTE_GPU_PROXY || defaultProxySocket(), ...o } as LauncherOptions;
}

/** Credentials and direct-server settings never reach the kernel: the proxy owns them. */
const SCRUBBED_ENV = ['RGPU_TOKEN', 'RGPU_TOKEN_FILE', 'REMOTE_GPU_TOKEN', 'REMOTE_GPU_TOKEN_FILE', 'REMOTE_GPU_SERVER', 'RGPU_POOL'];

export function kernelEnv(base: NodeJS.ProcessEnv, socket: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = withShims(base);
  for (const k of SCRUBBED_ENV) delete env[k];
  const prepend = (v: string | undefined, first: string) => (v ? `${first}${path.delimiter}${v}` : first);
  env.LD_LIBRARY_PATH = prepend(base.LD_LIBRARY_PATH, interceptDir());
  env.PYTHONPATH = prepend(base.PYTHONPATH, pythonExtensionDir());
  env.REMOTE_GPU_PROXY = socket;
  // Debian's ipykernel prints a debugpy warning about frozen modules on every start; it is noise here.
  env.PYDEVD_DISABLE_FILE_VALIDATION = '1';
  return env;
}

export function kernelArgv(python: string, connectionFile: string, parentPid: number): string[] {
  return [python, '-m', 'ipykernel_launcher', '-f', connectionFile, '--ext=remote_gpu',
    // ipykernel exits when it is re-parented to init: covers a SIGKILLed launcher where setpriv is missing.
    // (On Unix the value only has to be non-zero and not 1.)
    `--IPKernelApp.parent_handle=${parentPid}`];
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

export async function runLauncher(argv: string[]): Promise<number> {
  const t0 = Date.now();
  const opts = parseLauncherArgs(argv);
  const python = opts.python || findKernelPython();
  const log = (s: string) => process.stderr.write(`[remote-gpu] ${s}\n`);
  if (!fs.existsSync(path.join(interceptDir(), 'libcuda.so.1'))) {
    log(`warning: ${interceptDir()}/libcuda.so.1 is missing (npm run build:c); CUDA calls will not reach the remote GPU`);
  }
  const { spawned } = await ensureProxy({ socket: opts.socket, pool: opts.pool, gpu: opts.gpu, tokenFile: opts.tokenFile }, log);
  const tProxy = Date.now();
  let cmd = kernelArgv(python, opts.connectionFile, process.pid);
  // pdeathsig ties the kernel's life to ours even if we are SIGKILLed (jupyter_client's kill does that).
  if (fs.existsSync('/usr/bin/setpriv')) cmd = ['/usr/bin/setpriv', '--pdeathsig=KILL', '--', ...cmd];
  // Own process group: jupyter_client signals our group, and we forward once, so ipykernel sees each
  // interrupt exactly once instead of once from the group signal and once from us.
  const child = spawn(cmd[0], cmd.slice(1), { env: kernelEnv(process.env, opts.socket), stdio: 'inherit', detached: true });
  if (process.env.REMOTE_GPU_TRACE === '1') {
    log(`proxy ${spawned ? 'started' : 'found'} in ${tProxy - t0} ms; kernel pid ${child.pid} on ${os.hostname()}`);
  }
  const handlers = FORWARDED.map((sig) => {
    const h = () => { if (child.exitCode === null) child.kill(sig); };
    process.on(sig, h);
    return [sig, h] as const;
  });
  return new Promise<number>((resolve, reject) => {
    child.once('error', (e) => reject(new KernelSetupError('RGPU_ERR_KERNEL_START', `cannot start ${cmd[0]}: ${e.message}`, { cause: e })));
    child.once('exit', (code, sig) => {
      for (const [s, h] of handlers) process.off(s, h);
      resolve(code ?? 128 + (sig ? os.constants.signals[sig] : 0));
    });
  });
}

if (require.main === module) {
  runLauncher(process.argv.slice(2)).then((code) => process.exit(code), (e: unknown) => {
    process.stderr.write(`[remote-gpu] kernel launcher: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
