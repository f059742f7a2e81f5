// The client end of a data lane (LANE_ATTACH) for tests: attaches with a session's ticket, then reads raw bytes.
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { Flag, HEADER_SIZE, Op, PROTOCOL_VERSION } from '../../gpu-runtime/protocol/generated/ops';
import { encodeFrame, packArgs, readHeader } from '../../gpu-runtime/protocol/ts/codec';

export class LaneSocket {
  private chunks: Buffer[] = [];
  private have = 0;
  private wake: (() => void) | null = null;
  readonly closed: Promise<void>;

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.have += c.length;
      this.wake?.();
    });
    sock.on('error', () => {});
    this.closed = new Promise((r) => sock.once('close', () => r()));
    void this.closed.then(() => this.wake?.());
  }

  /** Connects and sends LANE_ATTACH; resolves with the lane and the reply's result. */
  static async attach(port: number, session: string, ticket: string, host = '127.0.0.1'): Promise<{ lane: LaneSocket; result: number }> {
    const sock = net.connect(port, host);
    await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
    const lane = new LaneSocket(sock);
    sock.write(Buffer.concat(encodeFrame(Op.LANE_ATTACH, { seq: 7, body: packArgs(Op.LANE_ATTACH, { version: PROTOCOL_VERSION, session, ticket }) })));
    const head = readHeader(await lane.read(HEADER_SIZE));
    assert.equal(head.op, Op.LANE_ATTACH);
    assert.equal(head.seq, 7);
    assert.ok(head.flags & Flag.REPLY);
    if (head.length) await lane.read(head.length);
    return { lane, result: head.result };
  }

  async read(n: number): Promise<Buffer> {
    while (this.have < n) {
      if (this.sock.destroyed) throw new Error(`lane closed with ${this.have} of ${n} bytes`);
      await new Promise<void>((r) => (this.wake = r));
    }
    const all = Buffer.concat(this.chunks);
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    this.have -= n;
    return all.subarray(0, n);
  }

  get buffered(): number {
    return this.have;
  }
}
