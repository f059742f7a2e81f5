// `rgpu serve`: options → backends → listening server, and an orderly stop on SIGINT/SIGTERM.
// startServer() is the in-process entry used by tests and by the embedded default pool.
import type { Backend } from './backend';
import { DEFAULT_DEVICES, parseServeArgs, ServeHelpRequested, type ServeArgs } from './args';
import { loadBackends, parseDeviceSpec } from './backends';
import { ServerError } from './errors';
import { checkListenSecurity, isLoopback, listenServer, type RunningServer } from './server';
import type { Quota } from './session';

export interface StartOptions {
  /** Default 127.0.0.1; port default 7447 (0 = any free port). */
  host?: string;
  port?: number;
  /** Listen on this Unix socket instead of host:port (created 0600; a stale file nobody serves is replaced). */
  socketPath?: string;
  /** --devices syntax; ignored when `backends` is given. */
  devices?: string;
  /** Ready-made backends (tests inject fakes); the server closes them on close(). */
  backends?: Backend[];
  token?: string;
  tls?: { cert: string | Buffer; key: string | Buffer };
  mode?: 'exclusive' | 'shared';
  memQuota?: number;
  quota?: Partial<Quota>;
  metrics?: { host: string; port: number };
  /** Close connections that send no HELLO within this time (default 30 s). */
  helloTimeoutMs?: number;
  maxConnections?: number;
  maxConnectionsPerAddress?: number;
  partialFrameTimeoutMs?: number;
  /** --devices cuda: sessions in the server process rather than one worker process each. */
  cudaInProcess?: boolean;
  /** Emulator options. */
  watchdogMs?: number;
  workers?: number;
  log?: (msg: string) => void;
}

export type { RunningServer };

export async function startServer(opts: StartOptions = {}): Promise<RunningServer> {
  checkListenSecurity(opts.host ?? '127.0.0.1', opts.token, opts.socketPath); // before loading any backend: fail fast
  const backends = opts.backends ?? (await loadBackends(parseDeviceSpec(opts.devices ?? DEFAULT_DEVICES), { watchdogMs: opts.watchdogMs, workers: opts.workers, cudaInProcess: opts.cudaInProcess }));
  try {
    return await listenServer({
      host: opts.host,
      port: opts.port,
      socketPath: opts.socketPath,
      backends,
      token: opts.token,
      tls: opts.tls,
      mode: opts.mode,
      quota: { ...opts.quota, ...(opts.memQuota !== undefined ? { memory: opts.memQuota } : {}) },
      metrics: opts.metrics,
      helloTimeoutMs: opts.helloTimeoutMs,
      maxConnections: opts.maxConnections,
      maxConnectionsPerAddress: opts.maxConnectionsPerAddress,
      partialFrameTimeoutMs: opts.partialFrameTimeoutMs,
      log: opts.log,
    });
  } catch (e) {
    if (!opts.backends) await Promise.allSettled(backends.map((b) => b.close()));
    throw e;
  }
}

function optionsOf(a: ServeArgs): StartOptions {
  return {
    host: a.host,
    port: a.port,
    socketPath: a.socketPath,
    devices: a.devices,
    token: a.token,
    tls: a.tlsCert && a.tlsKey ? { cert: a.tlsCert, key: a.tlsKey } : undefined,
    mode: a.mode,
    memQuota: a.memQuota,
    metrics: a.metrics,
    maxConnections: a.maxConnections,
    maxConnectionsPerAddress: a.maxConnectionsPerAddress,
    cudaInProcess: a.cudaInProcess,
    workers: a.emuWorkers,
    log: process.env.REMOTE_GPU_TRACE === '1' ? (m) => process.stderr.write(`rgpu serve: ${m}\n`) : undefined,
  };
}

/** The `rgpu serve` command; resolves when the server has stopped after SIGINT/SIGTERM. */
export async function runServe(argv: string[]): Promise<void> {
  let server: RunningServer;
  try {
    server = await startServer(optionsOf(parseServeArgs(argv)));
  } catch (e) {
    if (e instanceof ServeHelpRequested) {
      process.stdout.write(`${e.message}\n`);
      return;
    }
    if (e instanceof ServerError) {
      process.stderr.write(`rgpu serve: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw e;
  }
  const { host, port } = server.address;
  if (!server.socketPath && !isLoopback(host) && !server.tls) {
    process.stderr.write('rgpu serve: warning: listening beyond loopback without TLS; the token and all data travel in clear text (use --tls-cert/--tls-key)\n');
  }
  const types = server.pool.inventory().types.map((t) => `${t.type}x${t.total}`).join(', ');
  process.stderr.write(`rgpu serve: listening on ${server.socketPath ? `unix:${server.socketPath}` : `${host}:${port}`} (${types})${server.metricsAddress ? `, metrics on http://${server.metricsAddress.host}:${server.metricsAddress.port}/metrics` : ''}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.stderr.write('rgpu serve: stopping\n');
      server.close().then(resolve, resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

if (require.main === module) {
  runServe(process.argv.slice(2)).catch((e) => {
    process.stderr.write(`rgpu serve: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
