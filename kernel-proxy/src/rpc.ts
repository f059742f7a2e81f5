// The proxy's JSON-RPC surface (docs/contracts.md "kernel-proxy JSON-RPC"), served with vscode-jsonrpc on
// stdio and on every connection of the `.ctl` socket; statsChanged goes to all of them.
import type * as net from 'node:net';
import type * as JsonRpc from 'vscode-jsonrpc/lib/node/main';
import type { Stats } from './stats';
import { ProxyError, errorMessage } from './errors';

// moduleResolution node10 ignores package "exports", so the types come from the file and the value from
// the exported subpath (a deep require of lib/ is refused by Node at run time).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const rpc: typeof JsonRpc = require('vscode-jsonrpc/node');

export interface ProxyApi {
  status(): unknown;
  inventory(): Promise<unknown>;
  setGpuType(type: string): { type: string };
  setPool(url: string, token?: string): Promise<{ ok: boolean }>;
  stats(): Stats;
  ping(): Promise<{ rttMs: number }>;
  /** Called after the shutdown reply has been sent. */
  shutdown(): void;
}

const SHUTDOWN_REPLY_GRACE_MS = 100;

/** JSON-RPC server error code for failures carrying an RGPU_ERR_* code in `data.code`. */
export const RPC_PROXY_ERROR = -32000;

export class RpcHub {
  private readonly conns = new Set<JsonRpc.MessageConnection>();

  constructor(private readonly api: ProxyApi, private readonly log: (s: string) => void) {}

  get connections(): number {
    return this.conns.size;
  }

  attachSocket(sock: net.Socket): void {
    sock.on('error', () => {});
    this.attach(new rpc.SocketMessageReader(sock), new rpc.SocketMessageWriter(sock), () => sock.destroy());
  }

  /** Serves stdin/stdout; onClose runs when the client goes away (the editor quit). */
  attachStdio(onClose: () => void): void {
    this.attach(new rpc.StreamMessageReader(process.stdin), new rpc.StreamMessageWriter(process.stdout), onClose);
  }

  private attach(reader: JsonRpc.MessageReader, writer: JsonRpc.MessageWriter, onClose: () => void): void {
    const c = rpc.createMessageConnection(reader, writer);
    const api = this.api;
    c.onRequest('rgpu/status', () => api.status());
    c.onRequest('rgpu/inventory', () => guard(() => api.inventory()));
    c.onRequest('rgpu/setGpuType', (p: { type?: unknown } | undefined) =>
      guard(async () => {
        if (typeof p?.type !== 'string') throw new ProxyError('RGPU_ERR_BAD_ARGS', 'rgpu/setGpuType needs {type: string}');
        return api.setGpuType(p.type);
      }),
    );
    c.onRequest('rgpu/setPool', (p: { url?: unknown; token?: unknown } | undefined) =>
      guard(async () => {
        if (typeof p?.url !== 'string') throw new ProxyError('RGPU_ERR_BAD_ARGS', 'rgpu/setPool needs {url: string, token?: string}');
        if (p.token !== undefined && typeof p.token !== 'string') throw new ProxyError('RGPU_ERR_BAD_ARGS', 'rgpu/setPool: token must be a string');
        return api.setPool(p.url, p.token as string | undefined);
      }),
    );
    c.onRequest('rgpu/stats', () => api.stats());
    c.onRequest('rgpu/ping', () => guard(() => api.ping()));
    c.onRequest('rgpu/shutdown', () => {
      // The writer queues asynchronously: give the reply time to leave before the process goes.
      setTimeout(() => api.shutdown(), SHUTDOWN_REPLY_GRACE_MS);
      return {};
    });
    c.onError(([e]) => {
      // A client that hangs up mid-write is routine (rgpu smi, an editor reload), not worth a log line.
      if (!/ended by the other party|EPIPE|ECONNRESET/.test(errorMessage(e))) this.log(`json-rpc: ${errorMessage(e)}`);
    });
    c.onClose(() => {
      this.conns.delete(c);
      c.dispose();
      onClose();
    });
    this.conns.add(c);
    c.listen();
  }

  broadcast(stats: Stats): void {
    for (const c of this.conns) c.sendNotification('rgpu/statsChanged', stats).catch(() => {});
  }

  close(): void {
    for (const c of this.conns) c.dispose();
    this.conns.clear();
  }
}

/** Maps failures to ResponseErrors whose data names the stable RGPU_ERR_* code. */
async function guard<T>(f: () => Promise<T>): Promise<T | JsonRpc.ResponseError<{ code: string }>> {
  try {
    return await f();
  } catch (e) {
    const code = e instanceof ProxyError ? e.code : 'RGPU_ERR_INTERNAL';
    return new rpc.ResponseError(RPC_PROXY_ERROR, errorMessage(e), { code });
  }
}
