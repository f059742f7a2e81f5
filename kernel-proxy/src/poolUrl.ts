// Pool addresses: `tcp://host:port`, `tls://host:port` or `unix:/path` (RGPU_POOL, --pool, rgpu/setPool), and
// the connection to them. TLS is node:tls with the system CAs; the token is never part of the URL. A pool on a
// Unix socket is one on this machine (the embedded server): its file permissions guard it.
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as fs from 'node:fs';
import { ProxyError, PoolUnavailableError } from './errors';

export interface PoolUrl {
  scheme: 'tcp' | 'tls' | 'unix';
  /** tcp/tls only ('' and 0 for unix). */
  host: string;
  port: number;
  /** unix only. */
  path?: string;
  /** The URL as given, for status and logs. */
  href: string;
}

export const DEFAULT_PORT = 7447;

export function parsePoolUrl(s: string): PoolUrl {
  const u = /^unix:(\/.*)$/.exec(s.trim());
  if (u) return { scheme: 'unix', host: '', port: 0, path: u[1], href: `unix:${u[1]}` };
  const m = /^(tcp|tls):\/\/(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(s.trim());
  if (!m) throw new ProxyError('RGPU_ERR_BAD_POOL_URL', `bad pool URL "${s}": expected tcp://HOST:PORT, tls://HOST:PORT or unix:/PATH`);
  const port = m[3] ? Number(m[3]) : DEFAULT_PORT;
  if (!(port > 0 && port < 65536)) throw new ProxyError('RGPU_ERR_BAD_POOL_URL', `bad port in pool URL "${s}"`);
  const host = m[2].startsWith('[') ? m[2].slice(1, -1) : m[2];
  return { scheme: m[1] as 'tcp' | 'tls', host, port, href: `${m[1]}://${m[2]}:${port}` };
}

/** The Unix socket path a pool connection was opened to: Node keeps no remote address for those. */
const dialedPaths = new WeakMap<net.Socket, string>();
export const dialedPath = (sock: net.Socket): string | undefined => dialedPaths.get(sock);

/**
 * Opens a connection to the pool; resolves once it is established (TLS: after the handshake) and rejects
 * with PoolUnavailableError on refusal or after timeoutMs, so that a dead pool is reported promptly.
 */
export function connectPool(url: PoolUrl, timeoutMs = 5000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock: net.Socket =
      url.scheme === 'tls'
        ? tls.connect({ host: url.host, port: url.port, servername: net.isIP(url.host) ? undefined : url.host })
        : url.scheme === 'unix'
          ? net.connect({ path: url.path! })
          : net.connect({ host: url.host, port: url.port });
    if (url.path) dialedPaths.set(sock, url.path);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new PoolUnavailableError(`pool ${url.href} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (e: Error): void => {
      clearTimeout(timer);
      reject(new PoolUnavailableError(`cannot reach the GPU pool at ${url.href}: ${e.message}`, { cause: e }));
    };
    sock.once('error', fail);
    sock.once(url.scheme === 'tls' ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      sock.off('error', fail);
      // Forwarded chunks are already coalesced by the sender, so Nagle would only add latency to sync calls.
      sock.setNoDelay(true);
      resolve(sock);
    });
  });
}

/** Reads a token file (first line, trimmed). Throws ProxyError naming the file, never echoing its content. */
export function readTokenFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').split(/\r?\n/)[0].trim();
  } catch (e) {
    throw new ProxyError('RGPU_ERR_TOKEN_FILE', `cannot read token file ${file}: ${(e as Error).message}`, { cause: e });
  }
}
