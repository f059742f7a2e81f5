// The sessions the proxy is forwarding, as shown by rgpu/status: one entry per intercept connection,
// updated from the HELLO reply (session id, device) and QUEUED notifications (queue position).

export interface SessionInfo {
  id: string;
  pid?: number;
  argv0?: string;
  gpuType: string;
  device?: string;
  state: 'connecting' | 'attached' | 'queued';
  queuePosition?: number;
  /** Set once a copy of this session took its data lane (large copies bypass the proxy's relay). */
  lane?: boolean;
}

export class SessionRegistry {
  private readonly byConn = new Map<number, SessionInfo>();
  private nextConn = 1;

  /** Registers a new intercept connection; returns its key. */
  open(gpuType: string): number {
    const key = this.nextConn++;
    this.byConn.set(key, { id: `c-${key}`, gpuType, state: 'connecting' });
    return key;
  }

  get(key: number): SessionInfo | undefined {
    return this.byConn.get(key);
  }

  close(key: number): void {
    this.byConn.delete(key);
  }

  /** Sessions that reached the pool (attached or queued), in the contract's shape. */
  list(): SessionInfo[] {
    const out: SessionInfo[] = [];
    for (const s of this.byConn.values()) if (s.state !== 'connecting') out.push({ ...s });
    return out;
  }

  get count(): number {
    let n = 0;
    for (const s of this.byConn.values()) if (s.state === 'attached') n++;
    return n;
  }

  /** Device name of the first attached session (for the status bar's one-line view). */
  get device(): string | undefined {
    for (const s of this.byConn.values()) if (s.state === 'attached' && s.device) return s.device;
    return undefined;
  }
}
