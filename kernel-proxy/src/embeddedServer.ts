// The embedded default pool: a local GPU server with emulated devices, run as a child process so that
// emulated kernels never share the proxy's event loop. It listens on a Unix socket next to the proxy's
// (`rgpu serve --listen unix:PATH`), not on a TCP port:
// - only this user can reach it (the socket is 0600 in the proxy's 0700 directory), while any local user
//   could connect to a loopback port, and the embedded server asks for no token;
// - a TCP port picked at random could be one that jupyter_client has just picked for the kernel we are
//   being started for and not yet bound: the kernel then dies with "Address already in use" (seen in CI).
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ProxyError } from './errors';
import { forEachLine } from './lines';

export const DEFAULT_EMBEDDED_DEVICES = 'emulated:T4x2,emulated:A100-40GB';

/** The CLI entry: this file compiles to <root>/out/kernel-proxy/src, the CLI to <root>/out/gpu-runtime/cli/src. */
export const cliMain = (): string => path.resolve(__dirname, '..', '..', 'gpu-runtime', 'cli', 'src', 'main.js');

/** Environment flag asking the `rgpu` CLI to stop (SIGTERM itself) when its stdin closes. */
export const EXIT_WITH_STDIN = 'RGPU_EXIT_WITH_STDIN';

/** The line the server prints once it listens, e.g. "listening on 127.0.0.1:40123" or "listening on unix:/p (…)". */
const LISTEN_LINE = /listen\w*\b.*?(?:(unix:\/.+?)(?= \(|$)|(?:tcp:\/\/)?(?:\[[^\]]+\]|[\w.-]+):(\d{1,5})\b)/i;
/** sun_path holds 108 bytes with its NUL: a longer socket path falls back to a loopback port. */
const MAX_SOCKET_PATH = 107;
/** Output kept for the error message when the server fails to start. */
const TAIL_LINES = 20;

export interface EmbeddedServerOptions {
  devices?: string;
  /** The Unix socket to serve on (its directory private to this user); loopback TCP when not given or too long. */
  socketPath?: string;
  startTimeoutMs?: number;
  /** Receives the server's output lines (the proxy forwards them to its log when tracing). */
  log?: (line: string) => void;
}

export class EmbeddedServer {
  private exited = false;
  private readonly exitPromise: Promise<void>;

  private constructor(private readonly child: ChildProcess, readonly url: string) {
    this.exitPromise = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    void this.exitPromise.then(() => (this.exited = true));
  }

  get running(): boolean {
    return !this.exited;
  }

  static start(opts: EmbeddedServerOptions = {}): Promise<EmbeddedServer> {
    const main = cliMain();
    if (!fs.existsSync(main)) return Promise.reject(new ProxyError('RGPU_ERR_EMBEDDED_SERVER', `cannot start the embedded GPU server: ${main} is missing (run npm run build)`));
    const unix = opts.socketPath && Buffer.byteLength(opts.socketPath) <= MAX_SOCKET_PATH ? opts.socketPath : undefined;
    const args = [main, 'serve', '--listen', unix ? `unix:${unix}` : '127.0.0.1:0', '--devices', opts.devices ?? DEFAULT_EMBEDDED_DEVICES];
    // stdin is a pipe the server never reads: when the proxy dies, even by SIGKILL, the pipe closes and the
    // CLI (RGPU_EXIT_WITH_STDIN) stops the server instead of leaving it orphaned.
    const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, [EXIT_WITH_STDIN]: '1' } });
    const tail: string[] = [];
    return new Promise<EmbeddedServer>((resolve, reject) => {
      let done = false;
      const finish = (e: Error | null, url = ''): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (e) {
          child.kill('SIGKILL');
          reject(e);
        } else resolve(new EmbeddedServer(child, url));
      };
      const timeoutMs = opts.startTimeoutMs ?? 20000;
      const timer = setTimeout(() => finish(failure(`did not report its port within ${timeoutMs} ms`, tail)), timeoutMs);
      const onLine = (line: string): void => {
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
        opts.log?.(line);
        const m = done ? null : LISTEN_LINE.exec(line);
        if (m) finish(null, m[1] ?? `tcp://127.0.0.1:${m[2]}`);
      };
      forEachLine(child.stdout!, onLine);
      forEachLine(child.stderr!, onLine);
      child.once('error', (e) => finish(failure(e.message, tail)));
      child.once('exit', (code, sig) => finish(failure(`exited with ${sig ?? code}`, tail)));
    });
  }

  /** SIGTERM, then SIGKILL if it has not exited after graceMs. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.exited) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exitPromise;
    clearTimeout(timer);
  }
}

function failure(why: string, tail: string[]): ProxyError {
  const out = tail.length ? `\n${tail.join('\n')}` : '';
  return new ProxyError('RGPU_ERR_EMBEDDED_SERVER', `embedded GPU server ${why}${out}`);
}

