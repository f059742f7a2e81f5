// `rgpu run -- CMD ARGS…`: attaches the remote GPU to one command. It starts a private kernel-proxy (and the
// embedded server when no pool is configured), runs CMD with the intercept library first on the library
// path, forwards signals, exits with CMD's status and stops what it started. It prints nothing to stdout
// of its own, so CMD's output stays clean for pipes.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KernelProxy } from '../../../kernel-proxy/src/proxy';
import { UsageError } from '../../../kernel-proxy/src/errors';
import { withShims } from '../../../kernel-proxy/src/repoPaths';

export const RUN_USAGE = `usage: rgpu run [--pool URL] [--gpu TYPE] [--token-file FILE] [--embedded-devices SPEC] -- CMD [ARGS…]
  Runs CMD with a remote GPU: a private kernel-proxy forwards its CUDA calls to the pool (default $RGPU_POOL;
  none: an embedded local server with emulated GPUs). Exits with CMD's status.`;

const VALUE_OPTIONS = new Set(['--pool', '--gpu', '--token-file', '--embedded-devices']);

export interface RunArgs {
  pool?: string;
  gpu?: string;
  tokenFile?: string;
  embeddedDevices?: string;
  command: string[];
}

/** Options come before CMD; `--` is optional when CMD does not start with a dash. */
export function parseRunArgs(argv: string[]): RunArgs | 'help' {
  const opts: Record<string, string> = {};
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    if (a === '--help' || a === '-h') return 'help';
    if (!a.startsWith('-')) break;
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (!VALUE_OPTIONS.has(name)) throw new UsageError(`rgpu run: unknown option ${name}\n${RUN_USAGE}`);
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new UsageError(`rgpu run: ${name} needs a value`);
    opts[name.slice(2)] = value;
  }
  const command = argv.slice(i);
  if (command.length === 0) throw new UsageError(`rgpu run: no command given\n${RUN_USAGE}`);
  return { pool: opts.pool, gpu: opts.gpu, tokenFile: opts['token-file'], embeddedDevices: opts['embedded-devices'], command };
}

/** <root>/gpu-runtime/intercept/build, where `make` puts libcuda.so.1; RGPU_INTERCEPT_DIR overrides. */
export function interceptLibDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.RGPU_INTERCEPT_DIR || path.resolve(__dirname, '..', '..', '..', '..', 'gpu-runtime', 'intercept', 'build');
}

/** The environment CMD runs in: the proxy socket, the intercept library and nvidia-smi, no direct-server bypass. */
export function commandEnv(socket: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...withShims(env), REMOTE_GPU_PROXY: socket };
  out.LD_LIBRARY_PATH = env.LD_LIBRARY_PATH ? `${interceptLibDir(env)}:${env.LD_LIBRARY_PATH}` : interceptLibDir(env);
  // A REMOTE_GPU_SERVER left in the environment would let the intercept bypass the proxy rgpu started.
  delete out.REMOTE_GPU_SERVER;
  delete out.REMOTE_GPU_TOKEN_FILE;
  delete out.REMOTE_GPU_GPU;
  return out;
}

const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGINT'];

export async function runRun(argv: string[]): Promise<number> {
  const args = parseRunArgs(argv);
  if (args === 'help') {
    process.stdout.write(`${RUN_USAGE}\n`);
    return 0;
  }
  const trace = process.env.REMOTE_GPU_TRACE === '1';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-run-'));
  let proxy: KernelProxy | null = null;
  try {
    proxy = await KernelProxy.start({
      socket: path.join(dir, 'proxy.sock'),
      pool: args.pool ?? (process.env.RGPU_POOL || undefined),
      tokenFile: args.tokenFile ?? (process.env.RGPU_TOKEN_FILE || undefined),
      gpuType: args.gpu ?? '',
      embeddedDevices: args.embeddedDevices,
      awaitPool: true,
      log: trace ? (s) => process.stderr.write(`rgpu-proxy: ${s}\n`) : () => {},
    });
    return await runChild(args.command, commandEnv(proxy.socketPath));
  } finally {
    await proxy?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function runChild(command: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command[0], command.slice(1), { stdio: 'inherit', env });
    const handlers = new Map<NodeJS.Signals, () => void>();
    for (const sig of FORWARDED) {
      // A terminal's Ctrl-C already reaches CMD (same process group); forwarding it again would interrupt twice.
      const h = (): void => {
        if (sig === 'SIGINT' && process.stdin.isTTY) return;
        child.kill(sig);
      };
      handlers.set(sig, h);
      process.on(sig, h);
    }
    const done = (code: number): void => {
      for (const [sig, h] of handlers) process.off(sig, h);
      resolve(code);
    };
    child.once('error', (e) => {
      process.stderr.write(`rgpu run: cannot run ${command[0]}: ${e.message}\n`);
      done((e as NodeJS.ErrnoException).code === 'ENOENT' ? 127 : 126);
    });
    child.once('exit', (code, sig) => done(code ?? 128 + (sig ? os.constants.signals[sig] : 0)));
  });
}
