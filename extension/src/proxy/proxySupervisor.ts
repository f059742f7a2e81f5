// Owns the kernel-proxy child process: starts `rgpu proxy --stdio`, speaks JSON-RPC to it (vscode-jsonrpc, the
// transport under vscode-languageclient: the proxy is not a language server, so LanguageClient's `initialize`
// handshake would not fit), restarts it with backoff when it crashes, and re-applies settings after each start.
import { spawn as nodeSpawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import type * as JsonRpc from 'vscode-jsonrpc/lib/node/main';
type MessageConnection = JsonRpc.MessageConnection;

// moduleResolution node10 ignores package "exports": types come from the file, the value from the exported subpath.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { createMessageConnection, StreamMessageReader, StreamMessageWriter }: typeof JsonRpc = require('vscode-jsonrpc/node');
import { Emitter } from '../common/emitter';
import { ProxyUnavailableError, errorMessage } from '../common/errors';
import { Methods, parseStats, type Stats } from './protocol';

export type ProxyState = 'starting' | 'running' | 'stopped';

export interface ProxyCommand { command: string; args: string[]; env?: NodeJS.ProcessEnv }

export interface ProxySupervisorOptions {
  /** Re-read on every (re)start, so changed settings apply to the next process. */
  command: () => ProxyCommand;
  log: (line: string) => void;
  /** Called after each successful start, e.g. to hand the pool token over again. */
  onStarted?: (sup: ProxySupervisor) => Promise<void>;
  spawn?: (cmd: string, args: string[], opts: SpawnOptions) => ChildProcess;
  requestTimeoutMs?: number;
  /** Backoff after a crash: base * 2^n, capped; reset once a process has stayed up for `healthyMs`. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  healthyMs?: number;
  /** Gives up (state "stopped") after this many crashes in a row. */
  maxCrashes?: number;
}

export class ProxySupervisor {
  private child: ChildProcess | undefined;
  private conn: MessageConnection | undefined;
  private _state: ProxyState = 'stopped';
  private crashes = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private disposed = false;
  private startedAt = 0;
  private _lastError: string | undefined;
  private readonly _onState = new Emitter<ProxyState>();
  private readonly _onStats = new Emitter<Stats>();
  readonly onState = this._onState.event;
  readonly onStats = this._onStats.event;
  /** How many times a crashed proxy was started again (for tests and the status tooltip). */
  restarts = 0;

  constructor(private readonly opts: ProxySupervisorOptions) {}

  get state(): ProxyState { return this._state; }
  get lastError(): string | undefined { return this._lastError; }
  get pid(): number | undefined { return this.child?.pid; }

  start(): void {
    if (this.disposed || this.child) return;
    this.clearRestart();
    let cmd: ProxyCommand;
    try {
      cmd = this.opts.command();
    } catch (e) {
      // A configuration problem (no runtime found): retrying cannot help until settings change.
      this._lastError = errorMessage(e);
      this.opts.log(`cannot start the kernel-proxy: ${this._lastError}`);
      this.setState('stopped');
      return;
    }
    this.setState('starting');
    const { command, args, env } = cmd;
    this.opts.log(`starting kernel-proxy: ${command} ${args.join(' ')}`);
    const spawn = this.opts.spawn ?? nodeSpawn;
    let child: ChildProcess;
    try {
      child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
    } catch (e) {
      this.onExit(undefined, `spawn failed: ${errorMessage(e)}`);
      return;
    }
    this.child = child;
    this.startedAt = Date.now();
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => { for (const l of d.split('\n')) if (l.trim()) this.opts.log(`[proxy] ${l}`); });
    child.on('error', (e) => { if (this.child === child) this.onExit(child, `process error: ${e.message}`); });
    child.on('exit', (code, signal) => { if (this.child === child) this.onExit(child, `exited (${signal ?? `code ${code}`})`); });
    const conn = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    conn.onNotification(Methods.statsChanged, (p: unknown) => {
      try { this._onStats.fire(parseStats(p)); } catch (e) { this.opts.log(`bad rgpu/statsChanged: ${errorMessage(e)}`); }
    });
    conn.onError(([e]: [Error, unknown, number | undefined]) => this.opts.log(`proxy connection error: ${e.message}`));
    conn.listen();
    this.conn = conn;
    // The first answered request proves the proxy is up; only then settings are re-applied and state is "running".
    void this.rawRequest(conn, Methods.status, undefined, 15000).then(async () => {
      if (this.conn !== conn) return;
      this.setState('running');
      try { await this.opts.onStarted?.(this); } catch (e) { this.opts.log(`re-applying settings failed: ${errorMessage(e)}`); }
    }, (e) => {
      if (this.conn !== conn) return;
      this.opts.log(`kernel-proxy did not answer: ${errorMessage(e)}`);
      this.kill(child);
    });
  }

  async request<T = unknown>(method: string, params?: unknown): Promise<T> {
    const conn = this.conn;
    if (!conn || this._state === 'stopped') throw new ProxyUnavailableError(`the kernel-proxy is not running${this._lastError ? ` (${this._lastError})` : ''}`);
    return this.rawRequest<T>(conn, method, params, this.opts.requestTimeoutMs ?? 10000);
  }

  /** Stops the current process (if any) and starts a fresh one, forgetting earlier crashes. */
  async restart(): Promise<void> {
    this.crashes = 0;
    const child = this.child;
    this.detach();
    if (child) await this.stopChild(child);
    this.start();
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.clearRestart();
    const child = this.child;
    const conn = this.conn;
    if (conn && child) {
      // Ask politely first so the proxy can close pool connections; fall back to signals.
      try { await this.rawRequest(conn, Methods.shutdown, undefined, 1000); } catch { /* dying anyway */ }
    }
    this.detach();
    if (child) await this.stopChild(child);
    this.setState('stopped');
    this._onState.dispose();
    this._onStats.dispose();
  }

  private rawRequest<T>(conn: MessageConnection, method: string, params: unknown, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new ProxyUnavailableError(`${method}: no answer in ${timeoutMs} ms`)), timeoutMs);
      const p = params === undefined ? conn.sendRequest<T>(method) : conn.sendRequest<T>(method, params);
      p.then((v: T) => { clearTimeout(t); resolve(v); }, (e: unknown) => { clearTimeout(t); reject(e instanceof Error ? e : new Error(String(e))); });
    });
  }

  private onExit(child: ChildProcess | undefined, why: string): void {
    if (child && this.child !== child) return;
    this._lastError = why;
    this.opts.log(`kernel-proxy ${why}`);
    this.detach();
    if (this.disposed) return;
    if (Date.now() - this.startedAt > (this.opts.healthyMs ?? 30000)) this.crashes = 0;
    this.crashes++;
    if (this.crashes > (this.opts.maxCrashes ?? 8)) {
      this.opts.log('kernel-proxy keeps crashing; giving up until "Remote GPU: Restart Proxy"');
      this.setState('stopped');
      return;
    }
    const delay = Math.min((this.opts.backoffBaseMs ?? 500) * 2 ** (this.crashes - 1), this.opts.backoffMaxMs ?? 10000);
    this.setState('starting');
    this.restartTimer = setTimeout(() => { this.restartTimer = undefined; this.restarts++; this.start(); }, delay);
  }

  private detach(): void {
    const conn = this.conn;
    this.conn = undefined;
    this.child = undefined;
    if (conn) { try { conn.dispose(); } catch { /* already closed */ } }
  }

  private stopChild(child: ChildProcess): Promise<void> {
    return new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) { resolve(); return; }
      const t = setTimeout(() => { child.kill('SIGKILL'); }, 2000);
      child.once('exit', () => { clearTimeout(t); resolve(); });
      child.kill('SIGTERM');
    });
  }

  private kill(child: ChildProcess): void {
    try { child.kill('SIGKILL'); } catch { /* gone */ }
  }

  private clearRestart(): void {
    if (this.restartTimer) { clearTimeout(this.restartTimer); this.restartTimer = undefined; }
  }

  private setState(s: ProxyState): void {
    if (this._state === s) return;
    this._state = s;
    this._onState.fire(s);
  }
}
