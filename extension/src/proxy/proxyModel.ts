// The extension's view of the kernel-proxy: latest status and stats, a bounded history for the statistics panel,
// and status polling. One owner for this state; the status bar, panel and hints read from it.
import { Emitter } from '../common/emitter';
import { errorMessage } from '../common/errors';
import { sampleOf } from '../panel/messages';
import { StatsHistory } from '../panel/statsHistory';
import { Methods, parseInventory, parseStatus, type Inventory, type ProxyStatus, type Stats } from './protocol';
import type { ProxyState, ProxySupervisor } from './proxySupervisor';

export class ProxyModel {
  status: ProxyStatus | undefined;
  stats: Stats | undefined;
  /** Last rgpu/ping result (ms): latency before any session has produced round-trip samples. */
  pingMs: number | undefined;
  /** The pool's first GPU type: what an empty `gpuType` (the pool default) means. */
  defaultType: string | undefined;
  readonly history: StatsHistory;
  private readonly _onChange = new Emitter<void>();
  readonly onChange = this._onChange.event;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(readonly proxy: ProxySupervisor, private readonly log: (s: string) => void, historyCapacity = 3600) {
    this.history = new StatsHistory(historyCapacity);
    proxy.onStats((s) => {
      this.stats = s;
      this.history.push(sampleOf(s));
      this._onChange.fire();
    });
    proxy.onState((st: ProxyState) => {
      if (st !== 'running') { this.status = undefined; this.pingMs = undefined; }
      else void this.refreshStatus();
      this._onChange.fire();
    });
  }

  get state(): ProxyState { return this.proxy.state; }

  /** Polls rgpu/status: sessions and queue positions change without a stats tick. */
  startPolling(intervalMs: number): void {
    this.stopPolling();
    this.timer = setInterval(() => { void this.refreshStatus(); }, intervalMs);
  }

  stopPolling(): void { if (this.timer) { clearInterval(this.timer); this.timer = undefined; } }

  async refreshStatus(): Promise<ProxyStatus | undefined> {
    if (this.proxy.state !== 'running' || this.polling) return this.status;
    this.polling = true;
    try {
      this.status = parseStatus(await this.proxy.request(Methods.status));
      // Until it is known, asked on every poll: right after start the pool may not be connected yet.
      if (this.defaultType === undefined && this.status.pool.connected) {
        try { this.defaultType = (await this.inventory()).types[0]?.type; } catch (e) { this.log(`rgpu/inventory: ${errorMessage(e)}`); }
      }
      if (!this.stats || this.stats.rtt.samples === 0) {
        const p = (await this.proxy.request<{ rttMs?: unknown }>(Methods.ping)).rttMs;
        this.pingMs = typeof p === 'number' ? p : undefined;
      }
      this._onChange.fire();
    } catch (e) {
      this.log(`rgpu/status: ${errorMessage(e)}`);
    } finally {
      this.polling = false;
    }
    return this.status;
  }

  async inventory(): Promise<Inventory> { return parseInventory(await this.proxy.request(Methods.inventory)); }

  async setGpuType(type: string): Promise<void> {
    await this.proxy.request(Methods.setGpuType, { type });
    await this.refreshStatus();
  }

  async setPool(url: string, token: string | undefined): Promise<void> {
    await this.proxy.request(Methods.setPool, token ? { url, token } : { url });
    await this.refreshStatus();
  }

  currentGpuType(): string {
    const attached = this.status?.sessions.find((x) => x.state === 'attached' && x.gpuType)?.gpuType;
    return this.status?.gpuType || attached || this.stats?.gpuType || this.defaultType || '';
  }

  dispose(): void { this.stopPolling(); this._onChange.dispose(); }
}
