// The proxy's control connection to the pool (HELLO purpose "control"): INVENTORY for rgpu/inventory and
// `rgpu smi`, and PING for round-trip figures. It reconnects with exponential backoff and reports its state;
// session traffic never goes through it (each session has its own connection, see forwarder.ts).
import { EventEmitter } from 'node:events';
import * as os from 'node:os';
import type * as net from 'node:net';
import { Flag, Op, PROTOCOL_VERSION } from '../../gpu-runtime/protocol/generated/ops';
import { cuResultName } from '../../gpu-runtime/protocol/generated/cuResult';
import { encodeFrame, FrameDecoder, packArgs, unpackValue, type Frame } from '../../gpu-runtime/protocol/ts/codec';
import { connectPool, type PoolUrl } from './poolUrl';
import { PoolRejectedError, PoolUnavailableError, ProxyError, errorMessage } from './errors';

export interface PoolClientOptions {
  url: PoolUrl;
  token: string;
  /** Reconnect after a loss (the proxy); false for one-shot use (`rgpu smi`). */
  reconnect?: boolean;
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** Period of the background PING; 0 disables it. */
  pingIntervalMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

interface Waiter {
  resolve(f: Frame): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * Events: 'connected', 'disconnected' (error), 'rtt' (ms of a background PING).
 */
export class PoolClient extends EventEmitter {
  private sock: net.Socket | null = null;
  private ready = false;
  private stopped = false;
  private seq = 1;
  private readonly waiters = new Map<number, Waiter>();
  private backoff: number;
  private retryTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private lastError: string | undefined;
  private readyWaiters: Array<{ resolve(): void; reject(e: Error): void }> = [];

  constructor(private readonly opts: PoolClientOptions) {
    super();
    this.backoff = opts.minBackoffMs ?? 250;
  }

  get url(): PoolUrl {
    return this.opts.url;
  }

  get connected(): boolean {
    return this.ready;
  }

  get error(): string | undefined {
    return this.lastError;
  }

  start(): void {
    this.stopped = false;
    void this.attempt();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.retryTimer = this.pingTimer = null;
    this.sock?.destroy();
    this.dropped(new PoolUnavailableError('control connection closed'));
  }

  /** Resolves once connected (or rejects with the first failure when not reconnecting). */
  whenReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  async ping(): Promise<number> {
    const body = Buffer.alloc(8);
    const t0 = performance.now();
    await this.request(Op.PING, body);
    return performance.now() - t0;
  }

  async inventory(): Promise<unknown> {
    const f = await this.request(Op.INVENTORY);
    return unpackValue(f.body, 'INVENTORY reply');
  }

  /** Sends a request and resolves with its reply frame; an error reply rejects with PoolRejectedError. */
  request(op: number, body?: Buffer): Promise<Frame> {
    if (!this.ready || !this.sock) return Promise.reject(new PoolUnavailableError(`not connected to the pool ${this.opts.url.href}${this.lastError ? `: ${this.lastError}` : ''}`));
    return this.send(this.sock, op, body);
  }

  private send(sock: net.Socket, op: number, body?: Buffer): Promise<Frame> {
    const seq = this.seq++;
    return new Promise<Frame>((resolve, reject) => {
      const timeoutMs = this.opts.requestTimeoutMs ?? 10000;
      const timer = setTimeout(() => {
        this.waiters.delete(seq);
        reject(new ProxyError('RGPU_ERR_POOL_TIMEOUT', `pool did not answer ${op === Op.PING ? 'PING' : `op ${op}`} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(seq, { resolve, reject, timer });
      for (const part of encodeFrame(op, { seq, body })) sock.write(part);
    });
  }

  private async attempt(): Promise<void> {
    let sock: net.Socket;
    try {
      sock = await connectPool(this.opts.url, this.opts.connectTimeoutMs);
    } catch (e) {
      return this.retry(e as Error);
    }
    if (this.stopped) {
      sock.destroy();
      return;
    }
    this.sock = sock;
    const decoder = new FrameDecoder();
    sock.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (e) {
        sock.destroy(e as Error);
        return;
      }
      for (const f of frames) this.onFrame(f);
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      if (this.sock !== sock) return;
      this.sock = null;
      const wasReady = this.ready;
      if (wasReady) this.lastError = `lost the connection to the pool ${this.opts.url.href}`;
      else if (!this.lastError) this.lastError = `pool ${this.opts.url.href} closed the connection during the handshake`;
      this.dropped(new PoolUnavailableError(`lost the connection to the pool ${this.opts.url.href}`));
      if (wasReady) this.emit('disconnected', this.lastError);
      this.retry(null);
    });
    const client = { pid: process.pid, host: os.hostname(), argv0: 'rgpu-proxy', runtime: `node ${process.version}` };
    const body = packArgs(Op.HELLO, { version: PROTOCOL_VERSION, token: this.opts.token, gpuType: '', purpose: 'control', client });
    try {
      await this.send(sock, Op.HELLO, body);
    } catch (e) {
      sock.destroy();
      return; // 'close' schedules the retry; keep the HELLO's error as the reason
    }
    this.ready = true;
    this.lastError = undefined;
    this.backoff = this.opts.minBackoffMs ?? 250;
    for (const w of this.readyWaiters.splice(0)) w.resolve();
    this.emit('connected');
    this.startPings();
  }

  private onFrame(f: Frame): void {
    if (!(f.flags & Flag.REPLY)) return; // notifications are not expected on a control connection
    const w = this.waiters.get(f.seq);
    if (!w) return;
    this.waiters.delete(f.seq);
    clearTimeout(w.timer);
    if (f.result === 0) return w.resolve(f);
    let message = cuResultName(f.result);
    try {
      const v = unpackValue(f.body) as { message?: unknown } | null;
      if (typeof v?.message === 'string') message = `${message}: ${v.message}`;
    } catch {
      /* keep the code's name */
    }
    if (f.op === Op.HELLO) this.lastError = `pool refused the connection: ${message}`;
    w.reject(new PoolRejectedError(f.result, message));
  }

  private startPings(): void {
    const every = this.opts.pingIntervalMs ?? 0;
    if (!every || this.pingTimer) return;
    this.pingTimer = setInterval(() => {
      this.ping().then(
        (ms) => this.emit('rtt', ms),
        () => {},
      );
    }, every);
    this.pingTimer.unref();
  }

  private dropped(e: Error): void {
    this.ready = false;
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    for (const [, w] of this.waiters) {
      clearTimeout(w.timer);
      w.reject(e);
    }
    this.waiters.clear();
  }

  private retry(e: Error | null): void {
    if (e) this.lastError = errorMessage(e);
    if (this.stopped || this.retryTimer) return;
    if (this.opts.reconnect === false) {
      const err = new PoolUnavailableError(this.lastError ?? `cannot reach the pool ${this.opts.url.href}`);
      for (const w of this.readyWaiters.splice(0)) w.reject(err);
      return;
    }
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.opts.maxBackoffMs ?? 10000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.attempt();
    }, delay);
    this.retryTimer.unref();
  }
}
