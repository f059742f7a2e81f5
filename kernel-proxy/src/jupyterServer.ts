/**
 * Owns one local jupyter-server process (token auth, loopback, a port picked here) for the demo and tests.
 * Facts behind the flags: /work/shared/facts/vscode-jupyter.md §2.3 (port 0 is reported as 0, root needs
 * --allow-root, allowed_kernelspecs hides Debian's python3 spec).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import { KernelSetupError } from './kernelErrors';
import { findKernelPython } from './pythonLocator';

export interface JupyterServerOptions {
  dataDir: string;          // private JUPYTER_PATH / config / runtime / root live under here
  jupyterPath: string[];    // where kernelspecs are (…/share/jupyter)
  kernelName: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

export interface RunningJupyter {
  baseUrl: string;
  token: string;
  pid: number;
  rootDir: string;
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

export async function startJupyterServer(o: JupyterServerOptions): Promise<RunningJupyter> {
  const python = findKernelPython();
  const port = await freePort();
  const token = crypto.randomBytes(24).toString('hex');
  const sub = (n: string) => { const d = path.join(o.dataDir, n); fs.mkdirSync(d, { recursive: true }); return d; };
  const rootDir = sub('root');
  const env: NodeJS.ProcessEnv = {
    ...process.env, ...o.env,
    JUPYTER_PATH: o.jupyterPath.join(path.delimiter),
    JUPYTER_CONFIG_DIR: sub('config'), JUPYTER_RUNTIME_DIR: sub('runtime'), JUPYTER_DATA_DIR: sub('data'),
    PYDEVD_DISABLE_FILE_VALIDATION: '1',
  };
  const args = ['-m', 'jupyter_server', '--no-browser', '--allow-root',
    '--ServerApp.ip=127.0.0.1', `--ServerApp.port=${port}`, '--ServerApp.port_retries=0',
    `--ServerApp.token=${token}`, `--ServerApp.root_dir=${rootDir}`,
    `--KernelSpecManager.allowed_kernelspecs=${o.kernelName}`,
    `--MappingKernelManager.default_kernel_name=${o.kernelName}`];
  // setpriv ties the server (and so its kernels) to us even if we are SIGKILLed.
  const cmd = fs.existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig=TERM', '--', python, ...args] : [python, ...args];
  const child: ChildProcess = spawn(cmd[0], cmd.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (b: Buffer) => { log = (log + b.toString()).slice(-64 * 1024); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const baseUrl = `http://127.0.0.1:${port}/`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  const deadline = Date.now() + (o.timeoutMs ?? 30000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new KernelSetupError('RGPU_ERR_JUPYTER_START', `jupyter-server exited with ${child.exitCode}:\n${log}`);
    try {
      const r = await fetch(`${baseUrl}api/status`, { headers: { Authorization: `token ${token}` } });
      if (r.ok) return { baseUrl, token, pid: child.pid!, rootDir, log: () => log, stop };
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new KernelSetupError('RGPU_ERR_JUPYTER_START', `jupyter-server did not answer on ${baseUrl} in time:\n${log}`);
}
