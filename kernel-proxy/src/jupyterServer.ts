/**
 * Starts one local jupyter-server (token auth, loopback, a port picked here, private config/runtime/data dirs)
 * for the demo, the tests and the VS Code extension's owned server. Facts behind the flags:
 * /work/shared/facts/vscode-jupyter.md §2.3 (port 0 is reported as 0, root needs --allow-root,
 * allowed_kernelspecs hides Debian's python3 spec).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import { KernelSetupError } from './kernelErrors';
import { findKernelPython } from './pythonLocator';

export interface JupyterServerOptions {
  dataDir: string;          // config / runtime / data (and root, unless rootDir is given) live under here
  jupyterPath: string[];    // where kernelspecs are (…/share/jupyter)
  kernelName: string;
  /** The server command; default: the Python that has ipykernel, `-m jupyter_server`. */
  command?: string[];
  /** Kernel working directory (default dataDir/root). */
  rootDir?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Server output as it arrives, the token already replaced by `<token>`. */
  onOutput?: (text: string) => void;
  /** The port to try first (default: a free one picked here). */
  port?: number;
}

export interface RunningJupyter {
  baseUrl: string;
  token: string;
  pid: number;
  rootDir: string;
  /** Settles with a description ("exited (code 1)") when the server process ends. */
  exited: Promise<string>;
  /** The last 64 KiB of output. */
  log(): string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** jupyter-server's message when its one port is taken (port_retries=0). */
const PORT_TAKEN = /port \d+ is not available/;
/** Tries with a fresh port after a port clash. */
const PORT_ATTEMPTS = 3;

/**
 * jupyter-server 1.x reports port 0 as 0, so the port is picked here and handed over, and another process may
 * bind it in the second before jupyter-server does: then it is tried again on a fresh port.
 */
export async function startJupyterServer(o: JupyterServerOptions): Promise<RunningJupyter> {
  let port = o.port ?? await freePort();
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(o, port);
    } catch (e) {
      if (!(e instanceof KernelSetupError && PORT_TAKEN.test(e.message)) || attempt >= PORT_ATTEMPTS) throw e;
      o.onOutput?.(`[remote-gpu] port ${port} was taken before jupyter-server bound it; trying another\n`);
      port = await freePort();
    }
  }
}

async function startOn(o: JupyterServerOptions, port: number): Promise<RunningJupyter> {
  const command = o.command ?? [findKernelPython(), '-m', 'jupyter_server'];
  const token = crypto.randomBytes(24).toString('hex');
  const sub = (n: string) => { const d = path.join(o.dataDir, n); fs.mkdirSync(d, { recursive: true, mode: 0o700 }); return d; };
  const rootDir = o.rootDir ?? sub('root');
  const env: NodeJS.ProcessEnv = {
    ...process.env, ...o.env,
    JUPYTER_PATH: o.jupyterPath.join(path.delimiter),
    JUPYTER_CONFIG_DIR: sub('config'), JUPYTER_RUNTIME_DIR: sub('runtime'), JUPYTER_DATA_DIR: sub('data'),
    PYDEVD_DISABLE_FILE_VALIDATION: '1',
  };
  // The token travels on the command line only to jupyter-server itself, never in the kernels' environment.
  delete env.JUPYTER_TOKEN;
  const args = [...command.slice(1), '--no-browser', '--allow-root',
    '--ServerApp.ip=127.0.0.1', `--ServerApp.port=${port}`, '--ServerApp.port_retries=0',
    `--ServerApp.token=${token}`, `--ServerApp.root_dir=${rootDir}`,
    `--KernelSpecManager.allowed_kernelspecs=${o.kernelName}`,
    `--MappingKernelManager.default_kernel_name=${o.kernelName}`];
  // setpriv ties the server (and so its kernels) to us even if we are SIGKILLed.
  const argv = fs.existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig=TERM', '--', command[0], ...args] : [command[0], ...args];
  const child: ChildProcess = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'], cwd: rootDir });
  let log = '';
  const keep = (b: Buffer) => {
    const text = b.toString().replaceAll(token, '<token>');
    log = (log + text).slice(-64 * 1024);
    o.onOutput?.(text);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let ended: string | undefined;
  const exited = new Promise<string>((r) => {
    child.once('exit', (code, sig) => r(ended = `exited (${sig ?? `code ${code}`})`));
    child.once('error', (e) => r(ended = e.message));
  });
  const baseUrl = `http://127.0.0.1:${port}/`;
  const stop = async () => {
    if (ended !== undefined || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  const deadline = Date.now() + (o.timeoutMs ?? 30000);
  while (Date.now() < deadline) {
    if (ended !== undefined) throw new KernelSetupError('RGPU_ERR_JUPYTER_START', `jupyter-server ${ended}:\n${log}`);
    try {
      // Bounded: whatever else holds the port may accept and never answer.
      const r = await fetch(`${baseUrl}api/status`, { headers: { Authorization: `token ${token}` }, signal: AbortSignal.timeout(2000) });
      if (r.ok) return { baseUrl, token, pid: child.pid!, rootDir, exited, log: () => log, stop };
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new KernelSetupError('RGPU_ERR_JUPYTER_START', `jupyter-server did not answer on ${baseUrl} in time:\n${log}`);
}
