// Raw limits of this machine, measured with the bench's own C programs in the same run as everything
// else: the yardsticks every figure through our path is divided by.
import { BenchBuild } from './build';
import { Helper, runJson, startHelper } from './proc';

const PINGS = 5_000;
const PING_SIZE = 64;

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

export interface Rtt {
  p50: number;
  p99: number;
}

export class RawProbe {
  constructor(private readonly build: BenchBuild) {}

  private async ping(port: number): Promise<Rtt> {
    const j = await runJson(await this.build.c('tcp_ping'), [String(port), String(PINGS), String(PING_SIZE)], 'tcp_ping', { timeoutMs: 60_000 });
    return { p50: Number(j.p50_us), p99: Number(j.p99_us) };
  }

  /** C↔C 64 B ping-pong over TCP loopback. */
  async rtt(): Promise<Rtt> {
    const echo = await startHelper(await this.build.c('tcp_echo'), []);
    try {
      return await this.ping(Number(echo.firstLine));
    } finally {
      await echo.stop();
    }
  }

  /** The same through a single-threaded C relay: the cheapest possible proxy hop. */
  async twoHopRtt(): Promise<Rtt> {
    const bin = await this.build.c('tcp_echo');
    const helpers: Helper[] = [];
    try {
      const far = await startHelper(bin, []);
      helpers.push(far);
      const relay = await startHelper(bin, [far.firstLine]);
      helpers.push(relay);
      return await this.ping(Number(relay.firstLine));
    } finally {
      await Promise.all(helpers.map((h) => h.stop()));
    }
  }

  /** One-way TCP loopback, 256 MiB in 1 MiB writes, 5 passes; the first warms socket buffers and pages. */
  async bandwidth(): Promise<{ MBps: number; all: number[] }> {
    const b = await runJson(await this.build.c('tcp_bw'), ['256', '1024', '5'], 'tcp_bw', { timeoutMs: 60_000 });
    const all = (b.MBps as number[]).slice(1);
    return { MBps: median(all), all };
  }
}
