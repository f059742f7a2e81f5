// `rgpu proxy`: argument parsing, start, and an orderly stop on SIGTERM/SIGINT (listeners closed, socket
// unlinked, embedded server stopped).
import { parseArgs } from 'node:util';
import { KernelProxy, type ProxyOptions } from './proxy';
import { defaultSocketPath } from './socketPath';
import { UsageError } from './errors';
import { DEFAULT_EMBEDDED_DEVICES } from './embeddedServer';

export const PROXY_USAGE = `usage: rgpu proxy [--socket PATH] [--pool URL] [--token-file FILE] [--gpu TYPE] [--stdio]
                  [--stats-interval MS] [--embedded-devices SPEC]
  Forwards the intercept library's connections (Unix socket PATH) to a GPU pool and serves JSON-RPC on
  PATH.ctl (and on stdio with --stdio).
  --socket            default ${defaultSocketPath()}
  --pool              tcp://HOST:PORT or tls://HOST:PORT (default $RGPU_POOL; none: an embedded local
                      server with emulated GPUs)
  --token-file        file holding the pool token (default $RGPU_TOKEN_FILE)
  --gpu               GPU type for new sessions (default: the pool's default type)
  --stats-interval    milliseconds between rgpu/statsChanged notifications (default 1000)
  --embedded-devices  devices of the embedded server (default ${DEFAULT_EMBEDDED_DEVICES})`;

export function parseProxyArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ProxyOptions | 'help' {
  let v;
  try {
    v = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        socket: { type: 'string' },
        pool: { type: 'string' },
        'token-file': { type: 'string' },
        gpu: { type: 'string' },
        stdio: { type: 'boolean' },
        'stats-interval': { type: 'string' },
        'embedded-devices': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n${PROXY_USAGE}`);
  }
  if (v.help) return 'help';
  const interval = v['stats-interval'] !== undefined ? Number(v['stats-interval']) : 1000;
  if (!Number.isInteger(interval) || interval < 10) throw new UsageError(`--stats-interval: expected milliseconds >= 10, got "${v['stats-interval']}"`);
  return {
    socket: v.socket ?? defaultSocketPath(env),
    pool: v.pool ?? (env.RGPU_POOL || undefined),
    tokenFile: v['token-file'] ?? (env.RGPU_TOKEN_FILE || undefined),
    gpuType: v.gpu ?? '',
    stdio: v.stdio ?? false,
    statsIntervalMs: interval,
    embeddedDevices: v['embedded-devices'],
  };
}

/** Runs the proxy until SIGTERM/SIGINT or rgpu/shutdown; resolves with the exit status. */
export async function runProxy(argv: string[]): Promise<number> {
  const opts = parseProxyArgs(argv);
  if (opts === 'help') {
    process.stdout.write(`${PROXY_USAGE}\n`);
    return 0;
  }
  let finished!: (code: number) => void;
  const done = new Promise<number>((r) => (finished = r));
  const proxy = await KernelProxy.start({ ...opts, onStopped: () => finished(0) });
  const onSignal = (sig: NodeJS.Signals): void => {
    process.stderr.write(`rgpu-proxy: ${sig}, stopping\n`);
    void proxy.stop().then(() => finished(0));
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  process.once('SIGHUP', onSignal);
  process.stderr.write(`rgpu-proxy: listening on ${proxy.socketPath} (control ${proxy.ctlPath})\n`);
  const code = await done;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  process.off('SIGHUP', onSignal);
  return code;
}
