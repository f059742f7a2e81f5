// JSON-RPC client helpers for tests: over the proxy's .ctl socket or a child's stdio.
import * as net from 'node:net';
import type * as JsonRpc from 'vscode-jsonrpc/lib/node/main';

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const rpc: typeof JsonRpc = require('vscode-jsonrpc/node');

export async function connectCtl(ctlPath: string): Promise<{ conn: JsonRpc.MessageConnection; sock: net.Socket }> {
  const sock = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(ctlPath);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
  const conn = rpc.createMessageConnection(new rpc.SocketMessageReader(sock), new rpc.SocketMessageWriter(sock));
  conn.listen();
  return { conn, sock };
}

/** Resolves with the next notification of `method`. */
export function nextNotification<T>(conn: JsonRpc.MessageConnection, method: string, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${method} within ${timeoutMs} ms`)), timeoutMs);
    const d = conn.onNotification(method, (p: T) => {
      clearTimeout(timer);
      d.dispose();
      resolve(p);
    });
  });
}
