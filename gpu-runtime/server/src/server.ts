// Listening (TCP, or TLS when a certificate is given), accepting, and the server's lifetime. Refuses to
// listen beyond loopback without a token: the protocol gives whoever connects a GPU and its memory.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Server as HttpServer } from 'node:http';
import type { Registry } from 'prom-client';
import type { Backend } from './backend';
import { Client } from './client';
import { FrameConnection } from './connection';
import { Dispatcher } from './dispatch';
import { ServerError } from './errors';
import type { ServerEnv } from './handler';
import { createMetricsRegistry, serveMetrics, ServerCounters } from './metrics';
import { ModuleCache } from './moduleCache';
import { Pool } from './pool';
import { listenUnix } from '../../protocol/ts/unixListen';
import type { Quota } from './session';

export const SERVER_NAME = 'remote-gpu/0.1.0';

export interface ServerOptions {
  host?: string;
  port?: number;
  /** A Unix socket to listen on instead of host:port: a pool on this machine only, such as the kernel-proxy's
   *  embedded server. Its mode (0600) is its access check, and no TCP port is open to other local users. */
  socketPath?: string;
  backends: Backend[];
  token?: string;
  tls?: { cert: string | Buffer; key: string | Buffer };
  mode?: 'exclusive' | 'shared';
  quota?: Partial<Quota>;
  metrics?: { host: string; port: number };
  maxFrame?: number;
  helloTimeoutMs?: number;
  /** Connections served at once (default 256); more are answered DEVICE_UNAVAILABLE at HELLO and closed. */
  maxConnections?: number;
  /** Connections served at once from one remote address (default 64). */
  maxConnectionsPerAddress?: number;
  /** A connection whose partial frame makes no progress for this long is closed (default 60 s). */
  partialFrameTimeoutMs?: number;
  log?: (msg: string) => void;
}

export const DEFAULT_MAX_CONNECTIONS = 256;
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 64;
/**
 * Refused connections are kept only long enough to answer their HELLO; beyond this many at once (a flood)
 * they are dropped unanswered, so refusing costs nothing either.
 */
const MAX_REFUSING = 64;
/** A refused connection that sends no HELLO within this time is dropped. */
const REFUSED_HELLO_MS = 5000;
/** Dead peers (a vanished laptop) are found by TCP keepalive instead of holding a GPU forever. */
const KEEPALIVE_MS = 60_000;

export interface RunningServer {
  /** The TCP address; { host: '', port: 0 } when listening on socketPath. */
  readonly address: { host: string; port: number };
  readonly socketPath?: string;
  readonly pool: Pool;
  readonly metrics: Registry;
  readonly metricsAddress?: { host: string; port: number };
  readonly counters: ServerCounters;
  /** True when the listener speaks TLS. */
  readonly tls: boolean;
  /** Clients connected now. */
  readonly clients: ReadonlySet<Client>;
  close(): Promise<void>;
}

export const DEFAULT_QUOTA: Quota = { memory: Number.MAX_SAFE_INTEGER, handles: 16384, queuedOps: 4096 };

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '::ffff:127.0.0.1';
}

/** A Unix socket (socketPath) is guarded by its file mode; a TCP address beyond loopback needs a token. */
export function checkListenSecurity(host: string, token: string | undefined, socketPath?: string): void {
  if (!socketPath && !isLoopback(host) && !token) {
    throw new ServerError('RGPU_ERR_INSECURE_LISTEN', `refusing to listen on ${host} without a token: anyone who can reach it would get a GPU. Pass --token-file FILE (and --tls-cert/--tls-key), or listen on 127.0.0.1`);
  }
}

function readPem(v: string | Buffer, what: string): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v.includes('-----BEGIN')) return Buffer.from(v);
  try {
    return readFileSync(v);
  } catch (e) {
    throw new ServerError('RGPU_ERR_TLS_CONFIG', `cannot read ${what} ${v}: ${(e as Error).message}`, { cause: e });
  }
}

export async function listenServer(o: ServerOptions): Promise<RunningServer> {
  const host = o.host ?? '127.0.0.1';
  checkListenSecurity(host, o.token, o.socketPath);
  const devices = o.backends.flatMap((b) => b.devices);
  const pool = new Pool(devices, o.mode ?? 'exclusive');
  const env: ServerEnv = { pool, cache: new ModuleCache(), serverName: SERVER_NAME };
  const dispatcher = new Dispatcher(env);
  const counters = new ServerCounters();
  const registry = createMetricsRegistry(pool, counters);
  const quota: Quota = { ...DEFAULT_QUOTA, ...o.quota };
  const clients = new Set<Client>();
  const log = o.log;
  const maxConnections = o.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const maxPerAddress = o.maxConnectionsPerAddress ?? DEFAULT_MAX_CONNECTIONS_PER_ADDRESS;
  /** Served (not refused) connections per remote address. */
  const perAddress = new Map<string, number>();
  let served = 0;
  let refusing = 0;
  // Data lanes are plain TCP: a TLS listener offers none, so that copies never travel in the clear.
  const laneTickets = o.tls ? undefined : new Map<string, Client>();

  /** Why this connection is over a limit, or null when it may be served. */
  const overLimit = (addr: string): string | null => {
    if (served >= maxConnections) return `the server is serving its limit of ${maxConnections} connections; try again later`;
    if ((perAddress.get(addr) ?? 0) >= maxPerAddress) return `${addr} already has ${maxPerAddress} connections to this server (the per-address limit); close some or try again later`;
    return null;
  };

  const onSocket = (socket: net.Socket): void => {
    const addr = socket.remoteAddress ?? (o.socketPath ? 'unix socket' : '?');
    const refusal = overLimit(addr);
    if (refusal) {
      counters.refused++;
      if (refusing >= MAX_REFUSING) {
        socket.destroy();
        return;
      }
      refusing++;
      log?.(`refusing a connection from ${addr}: ${refusal}`);
    } else {
      served++;
      perAddress.set(addr, (perAddress.get(addr) ?? 0) + 1);
    }
    let counted = true;
    const uncount = (): void => {
      if (!counted) return;
      counted = false;
      if (refusal) {
        refusing--;
        return;
      }
      served--;
      const n = (perAddress.get(addr) ?? 1) - 1;
      if (n > 0) perAddress.set(addr, n);
      else perAddress.delete(addr);
    };
    socket.setKeepAlive(true, KEEPALIVE_MS);
    let client: Client | null = null;
    const conn = new FrameConnection(
      socket,
      {
        onFrame: (f) => client!.onFrame(f),
        onProtocolError: (e) => client!.onProtocolError(e),
        placeBulk: (h, body) => client!.placeBulk(h, body),
        onClose: () => {
          uncount();
          client!.onClose();
          clients.delete(client!);
        },
        bytesIn: (n) => (counters.bytesIn += n),
        bytesOut: (n) => (counters.bytesOut += n),
      },
      o.maxFrame,
    );
    client = new Client(conn, env, dispatcher, {
      token: o.token,
      quota,
      counters,
      log,
      helloTimeoutMs: refusal ? Math.min(REFUSED_HELLO_MS, o.helloTimeoutMs ?? REFUSED_HELLO_MS) : o.helloTimeoutMs,
      refusal: refusal ?? undefined,
      laneTickets,
    });
    clients.add(client);
  };

  let server: net.Server;
  if (o.tls) {
    const options = { cert: readPem(o.tls.cert, 'TLS certificate'), key: readPem(o.tls.key, 'TLS key') };
    try {
      server = tls.createServer(options, onSocket);
    } catch (e) {
      throw new ServerError('RGPU_ERR_TLS_CONFIG', `bad TLS certificate or key: ${(e as Error).message}`, { cause: e });
    }
    server.on('tlsClientError', (e) => log?.(`TLS handshake failed: ${e.message}`));
  } else server = net.createServer(onSocket);

  if (o.socketPath) {
    try {
      await listenUnix(server, o.socketPath);
    } catch (e) {
      throw new ServerError('RGPU_ERR_BAD_ARGS', `cannot listen on unix:${o.socketPath}: ${(e as Error).message}`, { cause: e });
    }
  } else {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port ?? 7447, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }
  server.on('error', (e) => log?.(`listener: ${e.message}`));
  const addr = o.socketPath ? { address: '', port: 0 } : (server.address() as net.AddressInfo);

  let metricsServer: HttpServer | undefined;
  if (o.metrics) {
    try {
      metricsServer = await serveMetrics(registry, o.metrics.host, o.metrics.port);
    } catch (e) {
      server.close();
      throw new ServerError('RGPU_ERR_BAD_ARGS', `cannot serve metrics on ${o.metrics.host}:${o.metrics.port}: ${(e as Error).message}`, { cause: e });
    }
  }
  const maddr = metricsServer?.address() as net.AddressInfo | undefined;

  // One timer for all connections: a half-sent frame pins its bytes (up to the frame limit) for as long as the
  // client likes otherwise.
  const stallMs = o.partialFrameTimeoutMs ?? 60_000;
  const sweeper = setInterval(() => {
    for (const c of clients) c.sweep();
  }, stallMs / 2);
  sweeper.unref();

  let closing: Promise<void> | null = null;
  return {
    address: { host: addr.address, port: addr.port },
    socketPath: o.socketPath,
    pool,
    metrics: registry,
    metricsAddress: maddr ? { host: maddr.address, port: maddr.port } : undefined,
    counters,
    tls: !!o.tls,
    clients,
    close() {
      closing ??= (async () => {
        clearInterval(sweeper);
        const closed = new Promise<void>((r) => server.close(() => r()));
        for (const c of [...clients]) c.terminate();
        await closed;
        if (metricsServer) {
          const done = new Promise<void>((r) => metricsServer!.close(() => r()));
          metricsServer.closeAllConnections(); // a scraper's keep-alive connection would hold close() forever
          await done;
        }
        await Promise.allSettled(o.backends.map((b) => b.close()));
      })();
      return closing;
    },
  };
}
