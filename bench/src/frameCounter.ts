// A TCP relay that sits between a client (intercept or kernel-proxy) and the GPU server and counts, from
// frame headers only, how many times the client waited for the server.
//
// Timing alone cannot tell "waited for a reply" from "sent the next request a little late", so the relay
// makes the client show it: every reply is held back for a grace period. A client that is not blocked on
// the reply keeps sending within the grace period (its data releases the held reply at once and the round
// trip continues); a client that is blocked sends nothing, so when the grace period ends with no reply
// outstanding the round trip is over, and the next request that expects a reply starts a new one.
// Requests sent while a reply is awaited ride the same round trip (pipelining). This slows the client by
// up to the grace period per wait, so the relay is for counting runs only, never for timed ones.
import { createConnection, createServer, Server, Socket } from 'node:net';
import { Flag, HEADER_SIZE, OPS, Op } from '../../gpu-runtime/protocol/generated/ops';

export interface FrameCounts {
  /** Requests that expect a reply, excluding PING (the proxy's keep-alive, not the program's). */
  replyRequests: number;
  /** Round trips the client waited for (see above). */
  roundTrips: number;
  /** Every client → server frame by op name. */
  ops: Record<string, number>;
  bytesUp: number;
  bytesDown: number;
}

/** Walks frame headers across chunk boundaries without buffering bodies. */
class HeaderWalker {
  private header = Buffer.alloc(HEADER_SIZE);
  private have = 0;
  private skip = 0;

  constructor(private readonly onHeader: (op: number, flags: number) => void) {}

  push(chunk: Buffer): void {
    let o = 0;
    while (o < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - o);
        this.skip -= n;
        o += n;
        continue;
      }
      const n = Math.min(HEADER_SIZE - this.have, chunk.length - o);
      chunk.copy(this.header, this.have, o, o + n);
      this.have += n;
      o += n;
      if (this.have < HEADER_SIZE) return;
      this.have = 0;
      this.skip = this.header.readUInt32LE(0);
      this.onHeader(this.header.readUInt16LE(4), this.header.readUInt16LE(6));
    }
  }
}

function emptyCounts(): FrameCounts {
  return { replyRequests: 0, roundTrips: 0, ops: {}, bytesUp: 0, bytesDown: 0 };
}

export class FrameCounter {
  private server: Server | null = null;
  private sockets = new Set<Socket>();
  /** One entry per relayed connection since the last reset(). */
  private connections: FrameCounts[] = [];

  /**
   * @param graceMs how long a reply is held waiting for the client to show it was not blocked. Longer
   *   than any pause a non-blocked client makes between two calls (scheduling hiccups on a loaded VM).
   */
  constructor(private readonly upstream: { host: string; port: number }, private readonly graceMs = 20) {}

  async listen(): Promise<{ host: string; port: number }> {
    const server = createServer((client) => this.relay(client));
    this.server = server;
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen(0, '127.0.0.1', () => res());
    });
    const a = server.address();
    if (!a || typeof a === 'string') throw new Error('frame counter: no TCP address');
    return { host: '127.0.0.1', port: a.port };
  }

  reset(): void {
    this.connections = [];
  }

  /**
   * Totals over the session connections: those that launched a kernel. A kernel-proxy also keeps a
   * control connection to the pool (inventory, pings), which is not the program's traffic.
   */
  sessionTotals(): FrameCounts {
    const t = emptyCounts();
    for (const c of this.connections) {
      if (!c.ops.LAUNCH) continue;
      t.replyRequests += c.replyRequests;
      t.roundTrips += c.roundTrips;
      t.bytesUp += c.bytesUp;
      t.bytesDown += c.bytesDown;
      for (const [k, v] of Object.entries(c.ops)) t.ops[k] = (t.ops[k] ?? 0) + v;
    }
    return t;
  }

  private relay(client: Socket): void {
    const server = createConnection(this.upstream);
    client.setNoDelay(true);
    server.setNoDelay(true);
    this.sockets.add(client).add(server);
    let outstanding = 0;
    let turnOpen = false;
    let replySeen = false;
    const held: Buffer[] = [];
    let timer: NodeJS.Timeout | null = null;
    const c = emptyCounts();
    this.connections.push(c);
    const flush = (): void => {
      if (timer) clearTimeout(timer);
      timer = null;
      for (const d of held.splice(0)) if (!client.write(d)) server.pause();
    };
    const up = new HeaderWalker((op, flags) => {
      const name = OPS.get(op)?.name ?? `op${op}`;
      c.ops[name] = (c.ops[name] ?? 0) + 1;
      if (flags & (Flag.REPLY | Flag.NOTIFY) || flags & Flag.NO_REPLY || OPS.get(op)?.reply === 'none') return;
      if (op === Op.PING) return;
      c.replyRequests++;
      if (!turnOpen) c.roundTrips++;
      turnOpen = true;
      outstanding++;
    });
    const down = new HeaderWalker((op, flags) => {
      if (!(flags & Flag.REPLY) || op === Op.PING) return;
      replySeen = true;
      if (outstanding > 0) outstanding--;
    });
    client.on('data', (d: Buffer) => {
      c.bytesUp += d.length;
      // The client is not blocked: whatever was held reaches it now and the round trip goes on.
      if (held.length) flush();
      up.push(d);
      if (!server.write(d)) client.pause();
    });
    server.on('data', (d: Buffer) => {
      c.bytesDown += d.length;
      replySeen = false;
      down.push(d);
      if (!replySeen && !held.length) {
        if (!client.write(d)) server.pause();
        return;
      }
      held.push(d);
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        flush();
        if (outstanding === 0) turnOpen = false;
      }, this.graceMs);
    });
    server.on('drain', () => client.resume());
    client.on('drain', () => server.resume());
    const end = (): void => {
      if (timer) clearTimeout(timer);
      client.destroy();
      server.destroy();
      this.sockets.delete(client);
      this.sockets.delete(server);
    };
    client.on('close', end).on('error', end);
    server.on('close', end).on('error', end);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((res) => (this.server ? this.server.close(() => res()) : res()));
  }
}
