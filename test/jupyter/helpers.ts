// Shared fixtures for the notebook-kernel tests: temp dirs, a stand-in proxy control socket, process checks.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as JsonRpc from 'vscode-jsonrpc/lib/node/main';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const rpc: typeof JsonRpc = require('vscode-jsonrpc/node');

export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `rgpu-jt-${tag}-`));
}

/**
 * A control socket that answers rgpu/status and rgpu/stats like the kernel-proxy (docs/contracts.md), so
 * the launcher finds "a proxy" and %gpu has something to show, without any GPU path behind it.
 */
export class FakeProxyControl {
  readonly calls: string[] = [];
  private readonly server: net.Server;

  private constructor(readonly socket: string, private readonly answers: Record<string, unknown>) {
    this.server = net.createServer((sock) => {
      sock.on('error', () => {});
      const c = rpc.createMessageConnection(new rpc.SocketMessageReader(sock), new rpc.SocketMessageWriter(sock));
      c.onRequest((method: string) => {
        this.calls.push(method);
        if (!(method in this.answers)) throw new rpc.ResponseError(-32601, `no ${method} in the fake`);
        return this.answers[method];
      });
      c.listen();
    });
  }

  static async start(socket: string, answers: Record<string, unknown>): Promise<FakeProxyControl> {
    fs.mkdirSync(path.dirname(socket), { recursive: true, mode: 0o700 });
    const f = new FakeProxyControl(socket, answers);
    await new Promise<void>((r) => f.server.listen(`${socket}.ctl`, () => r()));
    return f;
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie still answers kill(0); its state letter says it is gone.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
