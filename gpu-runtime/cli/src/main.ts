// `rgpu`: the command line of Remote GPU. Each subcommand's module is loaded only when it runs, so a
// part that is missing from a build breaks only its own subcommand, with a clear message.
import { ProxyError, UsageError, errorMessage } from '../../../kernel-proxy/src/errors';

export const USAGE = `usage: rgpu <command> [options]   (rgpu <command> --help for details)
  serve    run a GPU server (a pool of real or emulated GPUs)
  proxy    run the kernel-proxy (intercept socket -> pool; JSON-RPC for the editor)
  run      run a command with a remote GPU:  rgpu run [--pool URL] [--gpu TYPE] -- CMD ARGS…
  smi      show the pool's GPUs, sessions and queue
  nvidia-smi  nvidia-smi for a process on the remote GPU (on PATH as nvidia-smi under rgpu run and the kernel)
  kernel   install or remove the remote-gpu Jupyter kernelspec
  demo     start a local demo (server, proxy, Jupyter)`;

/** Exit status, or null when the command keeps running on its own (a server). */
type Command = (argv: string[]) => Promise<number | null>;

function load<T>(modulePath: string, what: string): T {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(modulePath) as T;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'MODULE_NOT_FOUND' && err.message.includes(modulePath.replace(/^(\.\.?\/)+/, ''))) {
      throw new ProxyError('RGPU_ERR_MISSING_MODULE', `rgpu ${what} is not available in this build (${modulePath} is missing; run npm run build)`);
    }
    throw e;
  }
}

async function asStatus(r: unknown): Promise<number | null> {
  const v = await r;
  return typeof v === 'number' ? v : null;
}

const COMMANDS: Record<string, Command> = {
  serve: (argv) => asStatus(load<{ runServe(a: string[]): unknown }>('../../server/src/main', 'serve').runServe(argv)),
  proxy: (argv) => load<typeof import('../../../kernel-proxy/src/main')>('../../../kernel-proxy/src/main', 'proxy').runProxy(argv),
  run: (argv) => load<typeof import('./run')>('./run', 'run').runRun(argv),
  smi: (argv) => load<typeof import('./smi')>('./smi', 'smi').runSmi(argv),
  'nvidia-smi': (argv) => load<typeof import('./nvidiaSmi')>('./nvidiaSmi', 'nvidia-smi').runNvidiaSmi(argv),
  kernel: (argv) => asStatus(load<{ runKernelCommand(a: string[]): unknown }>('../../../kernel-proxy/src/kernelspec', 'kernel').runKernelCommand(argv)),
  demo: (argv) => asStatus(load<{ runDemo(a: string[]): unknown }>('./demo', 'demo').runDemo(argv)),
};

export async function main(argv: string[]): Promise<number | null> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    (cmd ? process.stdout : process.stderr).write(`${USAGE}\n`);
    return cmd ? 0 : 2;
  }
  const run = COMMANDS[cmd];
  if (!run) {
    process.stderr.write(`rgpu: unknown command "${cmd}"\n${USAGE}\n`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (e) {
    process.stderr.write(`rgpu ${cmd}: ${errorMessage(e)}\n`);
    if (e instanceof UsageError) return 2;
    if (!(e instanceof ProxyError) && process.env.REMOTE_GPU_TRACE === '1') process.stderr.write(`${(e as Error).stack}\n`);
    return 1;
  }
}

/**
 * A process started by the kernel-proxy (its embedded server) stops when the proxy goes away, which closes
 * its stdin: SIGTERM to itself runs the command's own orderly stop.
 */
function exitWithStdin(): () => void {
  if (process.env.RGPU_EXIT_WITH_STDIN !== '1') return () => {};
  delete process.env.RGPU_EXIT_WITH_STDIN;
  const stop = (): void => void process.kill(process.pid, 'SIGTERM');
  process.stdin.once('end', stop);
  process.stdin.once('error', stop);
  process.stdin.resume();
  return () => {
    process.stdin.off('end', stop);
    process.stdin.destroy();
  };
}

/** Process entry (bin/rgpu, or `node out/gpu-runtime/cli/src/main.js`). */
export function cli(): void {
  const unwatch = exitWithStdin();
  void main(process.argv.slice(2)).then((code) => {
    unwatch();
    // Exit explicitly: a finished command may leave handles (stdin of --stdio, timers) that would keep us up.
    if (code !== null) process.exit(code);
  });
}

if (require.main === module) cli();
