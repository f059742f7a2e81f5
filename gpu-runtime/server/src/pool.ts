// The devices of this server and who holds them. Exclusive mode (default) leases a device to one session
// at a time and queues the others per type, first come first served; shared mode puts a session on the
// least-loaded device of its type and never queues.
import { CudaError, CUresult, type Device, type DeviceInfo } from './backend';

export interface PoolDevice {
  readonly index: number;
  readonly type: string;
  readonly device: Device;
  readonly sessions: Set<string>;
}

export interface Lease {
  readonly sessionId: string;
  readonly device: PoolDevice;
}

interface Waiter {
  sessionId: string;
  type: string;
  onQueued: (position: number, type: string) => void;
  resolve: (l: Lease) => void;
  reject: (e: Error) => void;
}

export interface PendingLease {
  readonly promise: Promise<Lease>;
  /** Leaves the queue (the client went away); the promise rejects. No-op once the lease is granted. */
  cancel(): void;
}

export interface TypeInventory {
  type: string;
  name: string;
  memory: number;
  total: number;
  free: number;
  sessions: number;
  queued: number;
}

/** Who holds a device, as its HELLO said (for `rgpu smi` and logs). */
export interface SessionClient {
  session: string;
  pid?: number;
  host?: string;
  argv0?: string;
  since: number;
  /** Device memory the session has allocated now (bytes), for nvidia-smi's per-process column. */
  memUsed?: number;
}

export interface Inventory {
  types: TypeInventory[];
  /** uuid ("GPU-…"), cc ("7.5"), pciBusId ("00000000:00:04.0") and cudaVersion ("13.0") as nvidia-smi shows them. */
  devices: { index: number; type: string; name: string; memory: number; memUsed: number; uuid: string; cc: string; pciBusId: string; cudaVersion: string; sessions: string[]; clients: SessionClient[] }[];
  sessions: number;
  queued: number;
}

const hex = (b: Uint8Array, from: number, to: number): string => Buffer.from(b.subarray(from, to)).toString('hex');

/** A device's identity in nvidia-smi's spelling, for `nvidia-smi` on the client side. */
export function smiIdentity(info: DeviceInfo): { uuid: string; cc: string; pciBusId: string; cudaVersion: string } {
  const u = info.uuid;
  const h = (n: number, w: number): string => n.toString(16).padStart(w, '0').toUpperCase();
  return {
    uuid: `GPU-${hex(u, 0, 4)}-${hex(u, 4, 6)}-${hex(u, 6, 8)}-${hex(u, 8, 10)}-${hex(u, 10, 16)}`,
    cc: `${info.ccMajor}.${info.ccMinor}`,
    pciBusId: `${h(info.pciDomain, 8)}:${h(info.pciBus, 2)}:${h(info.pciDevice, 2)}.0`,
    cudaVersion: `${Math.floor(info.driverVersion / 1000)}.${Math.floor((info.driverVersion % 1000) / 10)}`,
  };
}

export class Pool {
  readonly devices: readonly PoolDevice[];
  private readonly queues = new Map<string, Waiter[]>();
  private readonly clients = new Map<string, SessionClient>();
  /** Each described session's live memory figure. */
  private readonly usage = new Map<string, () => number>();

  constructor(devices: readonly Device[], readonly mode: 'exclusive' | 'shared' = 'exclusive') {
    this.devices = devices.map((device, index) => ({ index, type: device.info.type, device, sessions: new Set<string>() }));
    for (const d of this.devices) if (!this.queues.has(d.type)) this.queues.set(d.type, []);
  }

  /** Type names in the order the devices were given; the first is the default type. */
  get types(): string[] {
    return [...this.queues.keys()];
  }

  get defaultType(): string {
    return this.types[0] ?? '';
  }

  get queuedCount(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  get sessionCount(): number {
    let n = 0;
    for (const d of this.devices) n += d.sessions.size;
    return n;
  }

  /**
   * A device of `type` ('' = default type) for the session: at once when one is free, else after waiting
   * in the queue, with onQueued told each position change. Unknown type: CudaError(NO_DEVICE).
   */
  acquire(sessionId: string, type: string, onQueued: (position: number, type: string) => void): PendingLease {
    const t = type || this.defaultType;
    const queue = this.queues.get(t);
    if (!queue) {
      const err = new CudaError(CUresult.CUDA_ERROR_NO_DEVICE, `no GPU of type "${type}" in this pool; available types: ${this.types.join(', ') || '(none)'}`);
      return { promise: Promise.reject(err), cancel() {} };
    }
    const free = this.pick(t);
    if (free && queue.length === 0) {
      return { promise: Promise.resolve(this.grant(free, sessionId)), cancel() {} };
    }
    let waiter!: Waiter;
    const promise = new Promise<Lease>((resolve, reject) => {
      waiter = { sessionId, type: t, onQueued, resolve, reject };
    });
    queue.push(waiter);
    onQueued(queue.length, t);
    return {
      promise,
      cancel: () => {
        const i = queue.indexOf(waiter);
        if (i < 0) return;
        queue.splice(i, 1);
        waiter.reject(new CudaError(CUresult.CUDA_ERROR_NO_DEVICE, 'left the queue'));
        this.announce(t, i);
      },
    };
  }

  /** Records what a leased session's HELLO said about its client (free-form, sanitised), and how to read its memory use. */
  describe(sessionId: string, client: unknown, memUsed?: () => number): void {
    if (memUsed) this.usage.set(sessionId, memUsed);
    const c = (client && typeof client === 'object' ? client : {}) as Record<string, unknown>;
    const str = (v: unknown): string | undefined => (typeof v === 'string' ? v.slice(0, 200) : undefined);
    this.clients.set(sessionId, {
      session: sessionId,
      pid: typeof c.pid === 'number' ? c.pid : undefined,
      host: str(c.host),
      argv0: str(c.argv0),
      since: Date.now(),
    });
  }

  /** Gives the device back; the first queued session of its type gets it. */
  release(lease: Lease): void {
    this.clients.delete(lease.sessionId);
    this.usage.delete(lease.sessionId);
    if (!lease.device.sessions.delete(lease.sessionId)) return;
    const queue = this.queues.get(lease.device.type)!;
    const free = queue.length ? this.pick(lease.device.type) : undefined;
    if (!free) return;
    const w = queue.shift()!;
    w.resolve(this.grant(free, w.sessionId));
    this.announce(lease.device.type, 0);
  }

  inventory(): Inventory {
    const types = this.types.map((type): TypeInventory => {
      const devs = this.devices.filter((d) => d.type === type);
      return {
        type,
        name: devs[0].device.info.name,
        memory: devs[0].device.info.totalMem,
        total: devs.length,
        free: devs.filter((d) => this.isFree(d)).length,
        sessions: devs.reduce((n, d) => n + d.sessions.size, 0),
        queued: this.queues.get(type)!.length,
      };
    });
    const devices = this.devices.map((d) => ({
      index: d.index,
      type: d.type,
      name: d.device.info.name,
      memory: d.device.info.totalMem,
      memUsed: d.device.memUsed(),
      ...smiIdentity(d.device.info),
      sessions: [...d.sessions],
      clients: [...d.sessions].map((id): SessionClient => ({ ...(this.clients.get(id) ?? { session: id, since: 0 }), memUsed: this.usage.get(id)?.() })),
    }));
    return { types, devices, sessions: this.sessionCount, queued: this.queuedCount };
  }

  private isFree(d: PoolDevice): boolean {
    return this.mode === 'shared' || d.sessions.size === 0;
  }

  private pick(type: string): PoolDevice | undefined {
    let best: PoolDevice | undefined;
    for (const d of this.devices) {
      if (d.type !== type || !this.isFree(d)) continue;
      if (!best || d.sessions.size < best.sessions.size) best = d;
    }
    return best;
  }

  private grant(d: PoolDevice, sessionId: string): Lease {
    d.sessions.add(sessionId);
    return { sessionId, device: d };
  }

  /** Tells waiters from index `from` on their new 1-based position. */
  private announce(type: string, from: number): void {
    const queue = this.queues.get(type)!;
    for (let i = from; i < queue.length; i++) queue[i].onQueued(i + 1, type);
  }
}
