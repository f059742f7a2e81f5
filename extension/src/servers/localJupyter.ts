// Owns the local Jupyter server behind the "Remote GPU" server collection: a private JUPYTER_PATH holding only the
// remote-gpu kernelspec, 127.0.0.1, a random token per start, and death with the extension host (setpriv).
import * as path from 'node:path';
import { startJupyterServer, type RunningJupyter } from '../../../kernel-proxy/src/jupyterServer';
import { JupyterServerError, errorMessage } from '../common/errors';

export interface LocalJupyterOptions {
  /** Private state directory (kernelspec, config, runtime files). */
  dir: string;
  /** Kernel working directory: the workspace folder when there is one. */
  rootDir: string;
  jupyterServer: string;
  /** Writes the remote-gpu kernelspec under `<prefix>/share/jupyter/kernels`. */
  installKernelSpec: (prefix: string) => void;
  /** Extra environment for the server and so for its kernels (e.g. REMOTE_GPU_PROXY). */
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  startTimeoutMs?: number;
}

export interface JupyterConnection { baseUrl: string; token: string }

export const KERNEL_NAME = 'remote-gpu';

export class LocalJupyter {
  private server: RunningJupyter | undefined;
  private starting: Promise<JupyterConnection> | undefined;
  private conn: JupyterConnection | undefined;
  private disposed = false;

  constructor(private readonly o: LocalJupyterOptions) {}

  get connection(): JupyterConnection | undefined { return this.conn; }

  /** Starts the server on first use; later callers share the same start. */
  ensureStarted(): Promise<JupyterConnection> {
    if (this.disposed) return Promise.reject(new JupyterServerError('the extension is shutting down'));
    if (this.conn && this.server) return Promise.resolve(this.conn);
    if (!this.starting) {
      this.starting = this.start().finally(() => { this.starting = undefined; });
    }
    return this.starting;
  }

  private async start(): Promise<JupyterConnection> {
    const d = this.o.dir;
    try { this.o.installKernelSpec(d); } catch (e) {
      throw new JupyterServerError(`cannot install the remote-gpu kernelspec: ${errorMessage(e)}`, { cause: e });
    }
    this.o.log(`starting ${this.o.jupyterServer}`);
    let server: RunningJupyter;
    try {
      server = await startJupyterServer({
        dataDir: d, jupyterPath: [path.join(d, 'share', 'jupyter')], kernelName: KERNEL_NAME, command: [this.o.jupyterServer],
        rootDir: this.o.rootDir, env: this.o.env, timeoutMs: this.o.startTimeoutMs,
        onOutput: (text) => { for (const l of text.split('\n')) if (l.trim()) this.o.log(`[jupyter] ${l}`); },
      });
    } catch (e) {
      throw new JupyterServerError(`${errorMessage(e).split('\n')[0]} (is Debian's jupyter-server installed? setting remoteGpu.jupyterServerPath)`, { cause: e });
    }
    this.o.log(`jupyter-server on ${server.baseUrl}`);
    this.server = server;
    void server.exited.then((how) => {
      this.o.log(`jupyter-server ${how}`);
      if (this.server === server) { this.server = undefined; this.conn = undefined; }
    });
    this.conn = { baseUrl: server.baseUrl, token: server.token };
    return this.conn;
  }

  /** Kernels running on the server (each is a notebook attached to Remote GPU). */
  async runningKernels(): Promise<{ id: string; name: string; execution_state?: string }[]> {
    if (!this.conn) return [];
    const r = await fetch(`${this.conn.baseUrl}api/kernels`, { headers: { Authorization: `token ${this.conn.token}` } });
    if (!r.ok) throw new JupyterServerError(`GET /api/kernels: HTTP ${r.status}`);
    return (await r.json()) as { id: string; name: string }[];
  }

  async restartKernel(id: string): Promise<void> {
    if (!this.conn) return;
    const r = await fetch(`${this.conn.baseUrl}api/kernels/${encodeURIComponent(id)}/restart`, { method: 'POST', headers: { Authorization: `token ${this.conn.token}` } });
    if (!r.ok) throw new JupyterServerError(`restarting kernel ${id}: HTTP ${r.status}`);
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    const server = this.server;
    this.server = undefined;
    this.conn = undefined;
    await server?.stop();
  }
}
