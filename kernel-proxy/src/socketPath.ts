// Where the proxy listens, and listening there safely: a private directory (0700), sockets 0600, and a
// stale socket left by a crashed proxy replaced while a live one is never stolen.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ProxyError } from './errors';
import { answers, listenUnix as listenSocket, SocketBusyError } from '../../gpu-runtime/protocol/ts/unixListen';

export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.XDG_RUNTIME_DIR) return path.join(env.XDG_RUNTIME_DIR, 'remote-gpu', 'proxy.sock');
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return path.join(os.tmpdir(), `remote-gpu-${uid}`, 'proxy.sock');
}

/**
 * Proxies that answer next to the default socket (the per-user one, then per-window ones such as VS Code's
 * `vscode-PID.sock`), newest first: what `rgpu smi` looks at when no socket is named.
 */
export async function runningProxySockets(env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const def = defaultSocketPath(env);
  const dir = path.dirname(def);
  let names: string[] = [];
  try { names = fs.readdirSync(dir).filter((n) => n.endsWith('.sock')); } catch { return []; }
  const mtime = (p: string) => { try { return fs.statSync(p).mtimeMs; } catch { return 0; } };
  // The default first, then newest first: a socket's rank is computed once, not at every comparison.
  const all = names.map((n) => path.join(dir, n)).map((p) => ({ p, rank: p === def ? Infinity : mtime(p) }))
    .sort((a, b) => b.rank - a.rank).map((x) => x.p);
  const live = await Promise.all(all.map((p) => answers(`${p}.ctl`)));
  return all.filter((_, i) => live[i]);
}

/** Creates the socket's directory with mode 0700 and refuses one that another user owns. */
export function ensurePrivateDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = fs.statSync(dir);
    if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
      throw new ProxyError('RGPU_ERR_SOCKET_DIR', `socket directory ${dir} belongs to another user`);
    }
    if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
  } catch (e) {
    if (e instanceof ProxyError) throw e;
    throw new ProxyError('RGPU_ERR_SOCKET_DIR', `cannot prepare socket directory ${dir}: ${(e as Error).message}`, { cause: e });
  }
}

export { answers };

/** Listens on a Unix socket (mode 0600); a leftover socket file nobody answers on is removed first. */
export async function listenUnix(server: net.Server, p: string): Promise<void> {
  try {
    await listenSocket(server, p);
  } catch (e) {
    if (e instanceof SocketBusyError) throw new ProxyError('RGPU_ERR_SOCKET_DIR', e.message, { cause: e });
    throw e;
  }
}
