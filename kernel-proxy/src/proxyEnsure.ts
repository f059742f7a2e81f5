import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { ProxyStartError } from './kernelErrors';
import { repoRoot } from './repoPaths';
import { defaultSocketPath } from './socketPath';

export interface ProxyOptions {
  socket: string;        // the intercept socket; the control socket is `${socket}.ctl`
  pool?: string;         // pool URL; absent = the proxy embeds the emulated GPU server
  gpu?: string;          // GPU type for new sessions
  tokenFile?: string;    // 0600 file with the pool token (read by the proxy, never passed on)
  timeoutMs?: number;
}

/** One proxy per user, at the proxy's own default path. */
export function defaultProxySocket(): string {
  return defaultSocketPath();
}

/** True when something accepts connections on the proxy's control socket. */
export function proxyAnswers(socket: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    // The control socket, not the intercept socket: a bare connect there would cost the proxy a pool connection.
    const c = net.connect(`${socket}.ctl`);
    const done = (ok: boolean) => { clearTimeout(t); c.destroy(); resolve(ok); };
    const t = setTimeout(() => done(false), timeoutMs);
    c.once('connect', () => done(true));
    c.once('error', () => done(false));
  });
}

export function rgpuCommand(): string[] {
  const cli = process.env.RGPU_CLI || path.join(repoRoot(), 'out', 'gpu-runtime', 'cli', 'src', 'main.js');
  return [process.execPath, cli];
}

function proxyArgs(opts: ProxyOptions): string[] {
  const args = ['proxy', '--socket', opts.socket];
  if (opts.pool) args.push('--pool', opts.pool);
  if (opts.gpu) args.push('--gpu', opts.gpu);
  if (opts.tokenFile) args.push('--token-file', opts.tokenFile);
  return args;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Makes sure a kernel-proxy serves `opts.socket`: returns at once when it answers, otherwise spawns
 * `rgpu proxy` detached (it outlives this kernel and serves the next ones) and waits for its socket.
 * A lock file keeps two kernels starting together from spawning two proxies.
 */
export async function ensureProxy(opts: ProxyOptions, log: (s: string) => void = () => {}): Promise<{ spawned: boolean }> {
  if (await proxyAnswers(opts.socket)) return { spawned: false };
  const dir = path.dirname(opts.socket);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const lock = `${opts.socket}.spawn.lock`;
  const timeoutMs = opts.timeoutMs ?? 20000;
  let spawned = false;
  try {
    const fd = fs.openSync(lock, 'wx', 0o600);
    fs.closeSync(fd);
    spawned = true;
  } catch {
    // Another launcher is starting it; a stale lock (its owner died) is taken over after the timeout.
    const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? 0);
    if (age > timeoutMs) { fs.rmSync(lock, { force: true }); return ensureProxy(opts, log); }
  }
  if (spawned) {
    const [node, cli] = rgpuCommand();
    if (!fs.existsSync(cli)) { fs.rmSync(lock, { force: true }); throw new ProxyStartError(`rgpu CLI not built: ${cli} (run npm run build)`); }
    const args = [cli, ...proxyArgs(opts)];
    const logFd = fs.openSync(`${opts.socket}.log`, 'a', 0o600);
    log(`starting kernel-proxy: rgpu ${args.slice(1).join(' ')} (log ${opts.socket}.log)`);
    const child = spawn(node, args, { detached: true, stdio: ['ignore', logFd, logFd], cwd: dir });
    fs.closeSync(logFd);
    let exited: string | undefined;
    child.once('exit', (code, sig) => { exited = `exited with ${sig ?? code}`; });
    child.unref();
    try {
      await waitForProxy(opts.socket, timeoutMs, () => exited);
    } finally {
      fs.rmSync(lock, { force: true });
    }
    return { spawned: true };
  }
  await waitForProxy(opts.socket, timeoutMs, () => undefined);
  return { spawned: false };
}

async function waitForProxy(socket: string, timeoutMs: number, failure: () => string | undefined, logHint = `; see ${socket}.log`): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await proxyAnswers(socket, 500)) return;
    const f = failure();
    if (f) throw new ProxyStartError(`kernel-proxy ${f} before its socket ${socket}.ctl answered${logHint}`);
    await sleep(100);
  }
  throw new ProxyStartError(`kernel-proxy socket ${socket}.ctl did not answer within ${timeoutMs} ms${logHint}`);
}

export interface OwnedProxy {
  socket: string;
  pid: number;
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts a proxy that belongs to the caller (the demo, tests): it dies with us (pdeathsig) and `stop()`
 * ends it, unlike the shared per-user proxy that ensureProxy leaves running.
 */
export async function startOwnedProxy(opts: ProxyOptions): Promise<OwnedProxy> {
  const [node, cli] = rgpuCommand();
  if (!fs.existsSync(cli)) throw new ProxyStartError(`rgpu CLI not built: ${cli} (run npm run build)`);
  fs.mkdirSync(path.dirname(opts.socket), { recursive: true, mode: 0o700 });
  const cmd = [node, cli, ...proxyArgs(opts)];
  if (fs.existsSync('/usr/bin/setpriv')) cmd.unshift('/usr/bin/setpriv', '--pdeathsig=TERM', '--');
  const child = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (b: Buffer) => { log = (log + b.toString()).slice(-64 * 1024); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exited: string | undefined;
  const gone = new Promise<void>((r) => child.once('exit', (code, sig) => { exited = `exited with ${sig ?? code}`; r(); }));
  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  };
  try {
    await waitForProxy(opts.socket, opts.timeoutMs ?? 20000, () => (exited ? `${exited}:\n${log}` : undefined), '');
  } catch (e) {
    await stop();
    throw e;
  }
  return { socket: opts.socket, pid: child.pid!, log: () => log, stop };
}
