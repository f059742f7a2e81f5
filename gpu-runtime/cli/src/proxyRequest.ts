// One JSON-RPC request to a running kernel-proxy over its `.ctl` socket (used by `rgpu smi`).
import * as net from 'node:net';
import type * as JsonRpc from 'vscode-jsonrpc/lib/node/main';
import { PoolUnavailableError } from '../../../kernel-proxy/src/errors';

// See kernel-proxy/src/rpc.ts for why the value comes from the `/node` subpath.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const rpc: typeof JsonRpc = require('vscode-jsonrpc/node');

export async function proxyRequest(ctlPath: string, method: string, params?: unknown): Promise<unknown> {
  const sock = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(ctlPath);
    s.once('connect', () => resolve(s));
    s.once('error', (e) => reject(new PoolUnavailableError(`cannot reach the kernel-proxy at ${ctlPath}: ${e.message}`, { cause: e })));
  });
  const c = rpc.createMessageConnection(new rpc.SocketMessageReader(sock), new rpc.SocketMessageWriter(sock));
  c.listen();
  try {
    return params === undefined ? await c.sendRequest(method) : await c.sendRequest(method, params);
  } finally {
    c.dispose();
    sock.destroy();
  }
}
