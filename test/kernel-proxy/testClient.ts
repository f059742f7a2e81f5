// An intercept stand-in: connects to the proxy's Unix socket, sends frames, collects replies.
import * as net from 'node:net';
import { Flag, Op, PROTOCOL_VERSION } from '../../gpu-runtime/protocol/generated/ops';
import { encodeFrame, FrameDecoder, packArgs, unpackValue, type Frame } from '../../gpu-runtime/protocol/ts/codec';

export class TestClient {
  readonly frames: Frame[] = [];
  readonly raw: Buffer[] = [];
  private readonly dec = new FrameDecoder();
  private waiters: Array<() => void> = [];
  closed = false;
  private seq = 1;

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (c: Buffer) => {
      this.raw.push(Buffer.from(c));
      for (const f of this.dec.push(c)) this.frames.push({ ...f, body: Buffer.from(f.body), bulk: Buffer.from(f.bulk) });
      this.wake();
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static connect(path: string): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(path);
      s.once('connect', () => resolve(new TestClient(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  nextSeq(): number {
    return this.seq++;
  }

  helloFrame(gpuType = '', seq = this.nextSeq()): Buffer {
    const body = packArgs(Op.HELLO, { version: PROTOCOL_VERSION, token: '', gpuType, purpose: 'session', client: { pid: 4242, host: 'h', argv0: 'python3', runtime: 'test' } });
    return encodeFrame(Op.HELLO, { seq, body })[0];
  }

  async hello(gpuType = ''): Promise<{ frame: Frame; value: Record<string, unknown> }> {
    const seq = this.seq;
    this.sock.write(this.helloFrame(gpuType));
    const frame = await this.waitFor((f) => f.op === Op.HELLO && (f.flags & Flag.REPLY) !== 0 && f.seq === seq);
    return { frame, value: unpackValue(frame.body) as Record<string, unknown> };
  }

  /** Resolves with the first received frame matching `pred` (searching frames already received too). */
  async waitFor(pred: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.find(pred);
      if (f) return f;
      if (this.closed) throw new Error('connection closed before the expected frame');
      if (Date.now() > deadline) throw new Error('timed out waiting for a frame');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection did not close');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }
}

export async function until(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
