// Raw limits of this machine, measured with the bench's own C programs in the same run as everything
// else: the yardsticks every figure through our path is divided by.
import { BenchBuild } from './build';
import { Helper, runJson, startHelper } from './proc';

export interface RawLimits {
  raw_rtt_us: number;
  raw_rtt_p99_us: number;
  raw_two_hop_rtt_us: number;
  raw_two_hop_rtt_p99_us: number;
  raw_tcp_MBps: number;
  raw_tcp_MBps_all: number[];
}

const PINGS = 20_000;
const PING_SIZE = 64;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

async function pingThrough(ping: string, port: number): Promise<{ p50: number; p99: number }> {
  const j = await runJson(ping, [String(port), String(PINGS), String(PING_SIZE)], 'tcp_ping', { timeoutMs: 60_000 });
  return { p50: Number(j.p50_us), p99: Number(j.p99_us) };
}

export async function measureRawLimits(build: BenchBuild): Promise<RawLimits> {
  const [echo, ping, bw] = await Promise.all([build.c('tcp_echo'), build.c('tcp_ping'), build.c('tcp_bw')]);
  const helpers: Helper[] = [];
  try {
    const direct = await startHelper(echo, []);
    helpers.push(direct);
    const one = await pingThrough(ping, Number(direct.firstLine));
    const far = await startHelper(echo, []);
    helpers.push(far);
    const relay = await startHelper(echo, [far.firstLine]);
    helpers.push(relay);
    const two = await pingThrough(ping, Number(relay.firstLine));
    const b = await runJson(bw, ['256', '1024', '5'], 'tcp_bw', { timeoutMs: 60_000 });
    const all = (b.MBps as number[]).slice(1); // the first pass warms the socket buffers and page tables
    return {
      raw_rtt_us: one.p50,
      raw_rtt_p99_us: one.p99,
      raw_two_hop_rtt_us: two.p50,
      raw_two_hop_rtt_p99_us: two.p99,
      raw_tcp_MBps: median(all),
      raw_tcp_MBps_all: all,
    };
  } finally {
    await Promise.all(helpers.map((h) => h.stop()));
  }
}
