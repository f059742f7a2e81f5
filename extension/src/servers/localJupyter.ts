// Owns the local Jupyter server behind the "Remote GPU" server collection: a private JUPYTER_PATH holding only the
// remote-gpu kernelspec, 127.0.0.1, a random token per start, and death with the extension host (setpriv).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
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

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function hasSetpriv(): boolean {
  return spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0;
}

export class LocalJupyter {
  private child: ChildProcess | undefined;
  private starting: Promise<JupyterConnection> | undefined;
  private conn: JupyterConnection | undefined;
  private disposed = false;

  constructor(private readonly o: LocalJupyterOptions) {}

  get connection(): JupyterConnection | undefined { return this.conn; }

  /** Starts the server on first use; later callers share the same start. */
  ensureStarted(): Promise<JupyterConnection> {
    if (this.disposed) return Promise.reject(new JupyterServerError('the extension is shutting down'));
    if (this.conn && this.child && this.child.exitCode === null) return Promise.resolve(this.conn);
    if (!this.starting) {
      this.starting = this.start().finally(() => { this.starting = undefined; });
    }
    return this.starting;
  }

  private async start(): Promise<JupyterConnection> {
    const d = this.o.dir;
    const dirs = { share: path.join(d, 'share', 'jupyter'), config: path.join(d, 'config'), runtime: path.join(d, 'runtime'), data: path.join(d, 'data') };
    for (const p of Object.values(dirs)) fs.mkdirSync(p, { recursive: true, mode: 0o700 });
    try { this.o.installKernelSpec(d); } catch (e) {
      throw new JupyterServerError(`cannot install the remote-gpu kernelspec: ${errorMessage(e)}`, { cause: e });
    }
    const port = await freePort();
    const token = crypto.randomBytes(24).toString('hex');
    const args = ['--no-browser', '--allow-root', '--ServerApp.ip=127.0.0.1', `--ServerApp.port=${port}`, '--ServerApp.port_retries=0',
      `--ServerApp.token=${token}`, `--ServerApp.root_dir=${this.o.rootDir}`,
      `--KernelSpecManager.allowed_kernelspecs=${KERNEL_NAME}`, `--MappingKernelManager.default_kernel_name=${KERNEL_NAME}`];
    const env: NodeJS.ProcessEnv = {
      ...process.env, ...this.o.env,
      JUPYTER_PATH: dirs.share, JUPYTER_CONFIG_DIR: dirs.config, JUPYTER_RUNTIME_DIR: dirs.runtime, JUPYTER_DATA_DIR: dirs.data,
      PYDEVD_DISABLE_FILE_VALIDATION: '1',
    };
    // The token travels on the command line only to jupyter-server itself; remove it from the inherited env.
    delete env.JUPYTER_TOKEN;
    // setpriv --pdeathsig takes the server down even when the extension host is SIGKILLed (else it is orphaned).
    const [cmd, argv] = hasSetpriv() ? ['setpriv', ['--pdeathsig=TERM', '--', this.o.jupyterServer, ...args]] : [this.o.jupyterServer, args];
    this.o.log(`starting ${this.o.jupyterServer} on 127.0.0.1:${port}`);
    const child = spawn(cmd, argv as string[], { env, stdio: ['ignore', 'pipe', 'pipe'], cwd: this.o.rootDir });
    this.child = child;
    let exited: string | undefined;
    child.on('exit', (code, sig) => { exited = `exited (${sig ?? `code ${code}`})`; this.o.log(`jupyter-server ${exited}`); if (this.child === child) { this.child = undefined; this.conn = undefined; } });
    child.on('error', (e) => { exited = e.message; this.o.log(`jupyter-server: ${e.message}`); });
    const logLines = (d: Buffer) => { for (const l of d.toString('utf8').split('\n')) if (l.trim()) this.o.log(`[jupyter] ${l.replaceAll(token, '<token>')}`); };
    child.stdout?.on('data', logLines);
    child.stderr?.on('data', logLines);
    const baseUrl = `http://127.0.0.1:${port}/`;
    const deadline = Date.now() + (this.o.startTimeoutMs ?? 30000);
    while (Date.now() < deadline) {
      if (exited) throw new JupyterServerError(`jupyter-server ${exited} (is Debian's jupyter-server installed? setting remoteGpu.jupyterServerPath)`);
      try {
        const r = await fetch(`${baseUrl}api/status`, { headers: { Authorization: `token ${token}` } });
        if (r.ok) { this.conn = { baseUrl, token }; return this.conn; }
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 150));
    }
    child.kill('SIGTERM');
    throw new JupyterServerError(`jupyter-server did not answer on ${baseUrl} in time`);
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
    const child = this.child;
    this.child = undefined;
    this.conn = undefined;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { child.kill('SIGKILL'); resolve(); }, 3000);
      child.once('exit', () => { clearTimeout(t); resolve(); });
      child.kill('SIGTERM');
    });
  }
}
