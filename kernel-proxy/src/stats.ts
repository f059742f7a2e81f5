// Traffic statistics of the proxy: counters updated on the hot path (typed arrays indexed by op id, no
// allocation per frame) and a snapshot in the `Stats` shape of docs/contracts.md built on demand.
import { opName } from '../../gpu-runtime/protocol/generated/ops';

export interface OpStats {
  count: number;
  bytes: number;
  timeMs: number;
}

export interface RttStats {
  lastMs: number;
  p50Ms: number;
  p99Ms: number;
  samples: number;
}

export interface Stats {
  t: number;
  uptimeMs: number;
  bytesToDevice: number;
  bytesFromDevice: number;
  h2dBps: number;
  d2hBps: number;
  opsPerSec: number;
  ops: Record<string, OpStats>;
  rtt: RttStats;
  queueDepth: number;
  errors: number;
  sessions: number;
  gpuType: string;
  device?: string;
}

/** Op ids are u16 on the wire but the table stays below 256; larger ids share the last slot. */
const OP_SLOTS = 256;
/** Percentiles are taken over the most recent RTT samples. */
const RTT_WINDOW = 1024;

export class ProxyStats {
  readonly startedAt = Date.now();
  bytesToDevice = 0;
  bytesFromDevice = 0;
  requests = 0;
  queueDepth = 0;
  errors = 0;
  private readonly opCount = new Float64Array(OP_SLOTS);
  private readonly opBytes = new Float64Array(OP_SLOTS);
  private readonly opTime = new Float64Array(OP_SLOTS);
  private readonly rtt = new Float64Array(RTT_WINDOW);
  private rttSamples = 0;
  private rttLast = 0;
  // Rates: deltas between the last two calls of tick().
  private lastTickAt = performance.now();
  private lastTo = 0;
  private lastFrom = 0;
  private lastRequests = 0;
  private h2dBps = 0;
  private d2hBps = 0;
  private opsPerSec = 0;

  /** A frame from the client towards the device (`bytes` includes the header). */
  request(op: number, bytes: number): void {
    const i = op < OP_SLOTS ? op : OP_SLOTS - 1;
    this.opCount[i]++;
    this.opBytes[i] += bytes;
    this.bytesToDevice += bytes;
    this.requests++;
  }

  /** Payload bytes of a copy that travelled on the data lane, booked to the op that announced them. */
  lane(op: number, bytes: number, toDevice: boolean): void {
    this.opBytes[op < OP_SLOTS ? op : OP_SLOTS - 1] += bytes;
    if (toDevice) this.bytesToDevice += bytes;
    else this.bytesFromDevice += bytes;
  }

  /** A frame from the device towards the client that is not a reply (notifications). */
  inbound(bytes: number): void {
    this.bytesFromDevice += bytes;
  }

  /**
   * A reply frame; `ms` is the time since its request, or negative if it matched none. `sample` false keeps
   * it out of the round-trip figures (a HELLO that waited in the pool's queue).
   */
  reply(op: number, bytes: number, ms: number, result: number, sample = true): void {
    const i = op < OP_SLOTS ? op : OP_SLOTS - 1;
    this.opBytes[i] += bytes;
    this.bytesFromDevice += bytes;
    if (ms >= 0) {
      this.opTime[i] += ms;
      if (sample) this.rttSample(ms);
    }
    if (result !== 0) this.errors++;
  }

  rttSample(ms: number): void {
    this.rtt[this.rttSamples % RTT_WINDOW] = ms;
    this.rttSamples++;
    this.rttLast = ms;
  }

  get lastRttMs(): number {
    return this.rttLast;
  }

  /** Recomputes the rates over the time since the previous tick (called every stats interval). */
  tick(now = performance.now()): void {
    const dt = (now - this.lastTickAt) / 1000;
    if (dt <= 0) return;
    this.h2dBps = (this.bytesToDevice - this.lastTo) / dt;
    this.d2hBps = (this.bytesFromDevice - this.lastFrom) / dt;
    this.opsPerSec = (this.requests - this.lastRequests) / dt;
    this.lastTickAt = now;
    this.lastTo = this.bytesToDevice;
    this.lastFrom = this.bytesFromDevice;
    this.lastRequests = this.requests;
  }

  snapshot(extra: { sessions: number; gpuType: string; device?: string }): Stats {
    const ops: Record<string, OpStats> = {};
    for (let i = 0; i < OP_SLOTS; i++) {
      if (this.opCount[i] === 0 && this.opBytes[i] === 0) continue;
      ops[i === OP_SLOTS - 1 ? 'OTHER' : opName(i)] = { count: this.opCount[i], bytes: this.opBytes[i], timeMs: round3(this.opTime[i]) };
    }
    const now = Date.now();
    const s: Stats = {
      t: now,
      uptimeMs: now - this.startedAt,
      bytesToDevice: this.bytesToDevice,
      bytesFromDevice: this.bytesFromDevice,
      h2dBps: Math.round(this.h2dBps),
      d2hBps: Math.round(this.d2hBps),
      opsPerSec: Math.round(this.opsPerSec),
      ops,
      rtt: this.rttStats(),
      queueDepth: this.queueDepth,
      errors: this.errors,
      sessions: extra.sessions,
      gpuType: extra.gpuType,
    };
    if (extra.device !== undefined) s.device = extra.device;
    return s;
  }

  private rttStats(): RttStats {
    const n = Math.min(this.rttSamples, RTT_WINDOW);
    if (n === 0) return { lastMs: 0, p50Ms: 0, p99Ms: 0, samples: 0 };
    const sorted = Array.from(this.rtt.subarray(0, n)).sort((a, b) => a - b);
    const pct = (p: number): number => sorted[Math.min(n - 1, Math.floor(p * n))];
    return { lastMs: round3(this.rttLast), p50Ms: round3(pct(0.5)), p99Ms: round3(pct(0.99)), samples: this.rttSamples };
  }
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;
