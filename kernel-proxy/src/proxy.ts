// The kernel-proxy as a whole: the intercept socket and its forwarders, the control connection to the
// pool, the embedded server when no pool is configured, statistics and the JSON-RPC hub. main.ts parses
// arguments and signals; `rgpu run` embeds a private instance.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { EmbeddedServer, DEFAULT_EMBEDDED_DEVICES } from './embeddedServer';
import { Forwarder } from './forwarder';
import { PoolClient } from './poolClient';
import { connectPool, parsePoolUrl, readTokenFile, type PoolUrl } from './poolUrl';
import { RpcHub, type ProxyApi } from './rpc';
import { SessionRegistry } from './sessions';
import { ensurePrivateDir, listenUnix } from './socketPath';
import { ProxyStats, type Stats } from './stats';
import { PoolUnavailableError, errorMessage } from './errors';

export interface ProxyOptions {
  socket: string;
  /** Pool URL; absent: start the embedded server. */
  pool?: string;
  token?: string;
  tokenFile?: string;
  gpuType?: string;
  statsIntervalMs?: number;
  pingIntervalMs?: number;
  embeddedDevices?: string;
  connectTimeoutMs?: number;
  /** Start the embedded server before listening, and fail if it does not start (`rgpu run`). */
  awaitPool?: boolean;
  /** Serve JSON-RPC on stdin/stdout too. */
  stdio?: boolean;
  log?: (s: string) => void;
  /** Called once the proxy has stopped because a client asked (rgpu/shutdown) or stdio closed. */
  onStopped?: () => void;
}

export interface StatusReply {
  pool: { url: string; connected: boolean; error?: string; embedded?: boolean };
  gpuType: string;
  sessions: Array<{ id: string; pid?: number; argv0?: string; gpuType: string; device?: string; state: string; queuePosition?: number; lane?: boolean }>;
  rttMs: number;
}

export class KernelProxy implements ProxyApi {
  readonly traffic = new ProxyStats();
  readonly sessions = new SessionRegistry();
  private readonly forwarders = new Set<Forwarder>();
  private readonly ctlSockets = new Set<net.Socket>();
  private readonly hub: RpcHub;
  private readonly dataServer: net.Server;
  private readonly ctlServer: net.Server;
  private readonly log: (s: string) => void;
  private poolUrl: PoolUrl | null = null;
  private token = '';
  private gpuType: string;
  private control: PoolClient | null = null;
  private embedded: EmbeddedServer | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;
  /** Settles once the pool URL is known (at once for a configured pool; after the embedded server started). */
  private poolReady: Promise<void> = Promise.resolve();
  /** Bumped by every pool change, so that a late embedded start does not override a newer choice. */
  private poolGen = 0;
  /** Why there is no pool URL (the embedded server failed to start). */
  private poolError: string | undefined;
  /** Socket files this instance created (a failed start must not unlink another proxy's socket). */
  private readonly ownedPaths: string[] = [];

  private constructor(private readonly opts: ProxyOptions) {
    this.log = opts.log ?? ((s) => process.stderr.write(`rgpu-proxy: ${s}\n`));
    this.gpuType = opts.gpuType ?? '';
    this.hub = new RpcHub(this, this.log);
    this.dataServer = net.createServer((sock) => this.accept(sock));
    this.ctlServer = net.createServer((sock) => {
      this.ctlSockets.add(sock);
      sock.once('close', () => this.ctlSockets.delete(sock));
      this.hub.attachSocket(sock);
    });
  }

  static async start(opts: ProxyOptions): Promise<KernelProxy> {
    const p = new KernelProxy(opts);
    try {
      await p.init();
    } catch (e) {
      await p.stop();
      throw e;
    }
    return p;
  }

  get socketPath(): string {
    return this.opts.socket;
  }

  get ctlPath(): string {
    return `${this.opts.socket}.ctl`;
  }

  private async init(): Promise<void> {
    if (this.opts.tokenFile) this.token = readTokenFile(this.opts.tokenFile);
    if (this.opts.token !== undefined) this.token = this.opts.token;
    if (this.opts.pool) this.poolUrl = parsePoolUrl(this.opts.pool);
    ensurePrivateDir(path.dirname(this.opts.socket));
    // The embedded server takes a second or more to come up: listen meanwhile, so that the editor and
    // kernels can connect at once (sessions wait for it in openPool), unless the caller wants it up first.
    if (this.poolUrl) this.connectControl();
    else {
      this.poolReady = this.startEmbedded();
      if (this.opts.awaitPool) await this.poolReady;
      else this.poolReady.catch((e) => this.log(errorMessage(e)));
    }
    await listenUnix(this.dataServer, this.opts.socket);
    this.ownedPaths.push(this.opts.socket);
    removeDeadPoolSockets(this.opts.socket);
    await listenUnix(this.ctlServer, this.ctlPath);
    this.ownedPaths.push(this.ctlPath);
    if (this.opts.stdio) this.hub.attachStdio(() => void this.stop().then(() => this.opts.onStopped?.()));
    const every = this.opts.statsIntervalMs ?? 1000;
    this.statsTimer = setInterval(() => {
      this.traffic.tick();
      if (this.hub.connections) this.hub.broadcast(this.stats());
    }, every);
  }

  /** The embedded server's socket for this start: the pid and generation keep it ours alone. */
  private embeddedSocket(gen: number): string {
    return `${this.opts.socket}${POOL_SOCKET}${process.pid}-${gen}`;
  }

  private async startEmbedded(): Promise<void> {
    const gen = ++this.poolGen;
    const trace = process.env.REMOTE_GPU_TRACE === '1';
    let e: EmbeddedServer;
    try {
      e = await EmbeddedServer.start({
        devices: this.opts.embeddedDevices ?? DEFAULT_EMBEDDED_DEVICES,
        // The pid keeps it from a second proxy about to find our socket taken, the generation from an earlier
        // embedded server of ours that is still stopping.
        socketPath: this.embeddedSocket(gen),
        log: trace ? (l) => this.log(`[server] ${l}`) : undefined,
      });
    } catch (err) {
      if (gen === this.poolGen) this.poolError = errorMessage(err);
      throw err;
    }
    // setPool or stop() came first while it was starting: it is not wanted any more.
    if (gen !== this.poolGen || this.stopping) {
      await e.stop();
      return;
    }
    this.embedded = e;
    this.poolUrl = parsePoolUrl(e.url);
    this.poolError = undefined;
    this.log(`embedded GPU server on ${e.url}`);
    this.connectControl();
  }

  /** The pool for a new session, waiting for the embedded server if it is still starting. */
  private async sessionPool(): Promise<net.Socket> {
    await this.poolReady.catch(() => {});
    if (!this.poolUrl) throw new PoolUnavailableError(`no GPU pool: ${this.poolError ?? 'the embedded server is not running'}`);
    return connectPool(this.poolUrl, this.opts.connectTimeoutMs);
  }

  private connectControl(): void {
    this.control?.stop();
    const c = new PoolClient({ url: this.poolUrl!, token: this.token, pingIntervalMs: this.opts.pingIntervalMs ?? 3000, connectTimeoutMs: this.opts.connectTimeoutMs });
    c.on('rtt', (ms: number) => this.traffic.rttSample(ms));
    c.on('connected', () => this.log(`connected to the pool ${c.url.href}`));
    c.on('disconnected', (why?: string) => this.log(`lost the pool ${c.url.href}${why ? `: ${why}` : ''}; reconnecting`));
    c.start();
    this.control = c;
  }

  private accept(sock: net.Socket): void {
    if (this.stopping) {
      sock.destroy();
      return;
    }
    const f = new Forwarder(
      sock,
      {
        stats: this.traffic,
        sessions: this.sessions,
        openPool: () => this.sessionPool(),
        helloFields: () => ({ token: this.token, gpuType: this.gpuType }),
        log: this.log,
        trace: process.env.REMOTE_GPU_TRACE === '1' ? this.log : undefined,
      },
      (done) => {
        this.forwarders.delete(done);
        this.retireEmbedded();
      },
    );
    this.forwarders.add(f);
  }

  // --- ProxyApi (JSON-RPC) -----------------------------------------------------------------

  status(): StatusReply {
    const c = this.control;
    const pool: StatusReply['pool'] = { url: this.poolUrl?.href ?? '', connected: c?.connected ?? false };
    if (c?.error && !c.connected) pool.error = c.error;
    else if (!this.poolUrl) pool.error = this.poolError ?? 'starting the embedded GPU server';
    if (this.embedded) pool.embedded = true;
    return { pool, gpuType: this.gpuType, sessions: this.sessions.list(), rttMs: this.traffic.lastRttMs };
  }

  inventory(): Promise<unknown> {
    if (!this.control) return Promise.reject(new PoolUnavailableError(`no GPU pool yet: ${this.status().pool.error}`));
    return this.control.inventory();
  }

  setGpuType(type: string): { type: string } {
    this.gpuType = type;
    return { type };
  }

  /** url "" (or "embedded") returns to the embedded server; its token is then irrelevant. */
  async setPool(url: string, token?: string): Promise<{ ok: boolean }> {
    if (token !== undefined) this.token = token;
    if (url === '' || url === 'embedded') {
      if (this.embedded?.running) {
        this.poolGen++;
        this.poolUrl = parsePoolUrl(this.embedded.url);
        this.connectControl();
      } else {
        this.poolReady = this.startEmbedded();
        await this.poolReady;
      }
    } else {
      const next = parsePoolUrl(url);
      this.poolGen++;
      this.poolUrl = next;
      this.poolReady = Promise.resolve();
      this.connectControl();
      this.retireEmbedded();
    }
    return { ok: true };
  }

  /** Stops the embedded server once no session uses it any more (the editor moved to a real pool). */
  private retireEmbedded(): void {
    const e = this.embedded;
    if (!e || this.poolUrl?.href === parsePoolUrl(e.url).href || this.forwarders.size > 0) return;
    this.embedded = null;
    void e.stop().catch((err) => this.log(`stopping the embedded server: ${errorMessage(err)}`));
    this.log('embedded GPU server stopped (pool changed)');
  }

  stats(): Stats {
    return this.traffic.snapshot({ sessions: this.sessions.count, gpuType: this.gpuType, device: this.sessions.device });
  }

  async ping(): Promise<{ rttMs: number }> {
    if (!this.control) throw new PoolUnavailableError(`no GPU pool yet: ${this.status().pool.error}`);
    const ms = await this.control.ping();
    this.traffic.rttSample(ms);
    return { rttMs: Math.round(ms * 1000) / 1000 };
  }

  shutdown(): void {
    void this.stop().then(() => this.opts.onStopped?.());
  }

  // --- lifecycle ---------------------------------------------------------------------------

  /** Orderly stop: listeners closed, sockets unlinked, sessions closed, embedded server stopped. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    if (this.statsTimer) clearInterval(this.statsTimer);
    const closing = [this.dataServer, this.ctlServer].filter((s) => s.listening).map((s) => new Promise<void>((r) => s.close(() => r())));
    for (const p of this.ownedPaths) fs.rmSync(p, { force: true });
    for (const f of this.forwarders) f.close();
    this.control?.stop();
    this.hub.close();
    // server.close() waits for every connection, so the JSON-RPC clients are cut off too.
    for (const s of this.ctlSockets) s.destroy();
    await Promise.all(closing);
    // An embedded server still starting stops itself on seeing `stopping`; wait for that too.
    await this.poolReady.catch(() => {});
    if (this.embedded) {
      try {
        await this.embedded.stop();
      } catch (e) {
        this.log(`stopping the embedded server: ${errorMessage(e)}`);
      }
    }
  }
}

/** `<proxy socket>.pool-PID-GEN`: an embedded server's socket (embeddedSocket). */
const POOL_SOCKET = '.pool-';

/**
 * Removes embedded-server sockets left by proxies that died with their server (both SIGKILLed): ours is the
 * only proxy on this socket now, so a file whose proxy pid is gone belongs to nobody.
 */
export function removeDeadPoolSockets(socket: string): void {
  const dir = path.dirname(socket);
  const prefix = `${path.basename(socket)}${POOL_SOCKET}`;
  let names: string[] = [];
  try { names = fs.readdirSync(dir).filter((n) => n.startsWith(prefix)); } catch { return; }
  for (const n of names) {
    const pid = Number(/^(\d+)-\d+$/.exec(n.slice(prefix.length))?.[1]);
    if (!pid || pid === process.pid || pidAlive(pid)) continue;
    fs.rmSync(path.join(dir, n), { force: true });
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

