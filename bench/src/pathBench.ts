// Figures through our path: bench/cuda/path_bench.cu under the intercept library, once through the
// kernel-proxy (`rgpu run`) and once straight to the server (REMOTE_GPU_SERVER), plus an exact count of
// the round trips one training-like step makes, taken on a frame-counting relay in front of the server.
import { BenchBuild } from './build';
import { FrameCounter } from './frameCounter';
import { runJson, startHelper } from './proc';
import { ProxyStatsSnapshot, startProxy } from './proxyStats';
import { cudaEnv, Paths, requireCli, requireIntercept, RunningServer, Unavailable } from './stack';

/** embedded: `rgpu run` with no pool, so its proxy starts the embedded server (a Unix socket, lanes on it). */
export type Route = 'proxy' | 'direct' | 'embedded';

/** A figure, or the reason it could not be measured in this run. */
export type Measured<T> = { ok: true; value: T } | { ok: false; reason: string };


export interface StepCount {
  steps: number;
  /** The kernel-proxy's own view (rgpu/stats deltas per step), when the route is the proxy. */
  proxyStats?: Measured<{ rttSamplesPerStep: number; opsPerStep: Record<string, number> }>;
  roundTripsPerStep: number;
  replyRequestsPerStep: number;
  framesPerStep: Record<string, number>;
  stepUs: number;
}

const RTT_CALLS = 1500;
const COPY_MIB = 256;
const LAUNCHES = 200_000;
const STEPS = 50;

function reasonOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function numbers(j: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(j)) if (typeof v === 'number') out[k] = v;
  return out;
}

/** Per-step deltas of the proxy's counters: (after N steps − after 0 steps) − (after 0 steps − before). */
function proxyDelta(s0: ProxyStatsSnapshot | null, s1: ProxyStatsSnapshot | null, s2: ProxyStatsSnapshot | null): StepCount['proxyStats'] {
  if (!s0 || !s1 || !s2) return { ok: false, reason: 'rgpu/stats did not answer' };
  const opsPerStep: Record<string, number> = {};
  for (const op of Object.keys(s2.ops ?? {})) {
    const c = (s: ProxyStatsSnapshot): number => s.ops?.[op]?.count ?? 0;
    const d = (c(s2) - c(s1) - (c(s1) - c(s0))) / STEPS;
    if (d !== 0) opsPerStep[op] = d;
  }
  const r = (s: ProxyStatsSnapshot): number => s.rtt?.samples ?? 0;
  return { ok: true, value: { rttSamplesPerStep: (r(s2) - r(s1) - (r(s1) - r(s0))) / STEPS, opsPerStep } };
}

export class PathBench {
  constructor(private readonly build: BenchBuild, private readonly paths: Paths) {}

  private bin(): Promise<string> {
    return this.build.cuda('path_bench');
  }

  /**
   * Runs path_bench with `args` against the server at `url`: directly, through `rgpu run`, or through an
   * already running kernel-proxy listening on `socket`. Returns its JSON line.
   */
  async run(route: Route | { socket: string }, url: string, args: string[], timeoutMs: number, extraEnv: Record<string, string> = {}): Promise<Record<string, unknown>> {
    requireIntercept(this.paths);
    const bin = await this.bin();
    if (typeof route === 'object') {
      const env = cudaEnv(this.paths, { ...extraEnv, REMOTE_GPU_PROXY: route.socket });
      delete env.REMOTE_GPU_SERVER;
      return runJson(bin, args, 'path_bench (kernel-proxy)', { env, timeoutMs });
    }
    if (route === 'direct') return runJson(bin, args, 'path_bench (direct)', { env: cudaEnv(this.paths, { ...extraEnv, REMOTE_GPU_SERVER: url }), timeoutMs });
    requireCli(this.paths);
    // `rgpu run` starts a private kernel-proxy for the command, pointed at the pool in RGPU_POOL (none: its
    // own embedded server, not the bench's).
    const env = cudaEnv(this.paths, { ...extraEnv, RGPU_POOL: url });
    if (route === 'embedded') delete env.RGPU_POOL;
    delete env.REMOTE_GPU_SERVER;
    delete env.REMOTE_GPU_PROXY;
    return runJson(process.execPath, [this.paths.cliMain, 'run', '--', bin, ...args], 'rgpu run path_bench', { env, timeoutMs });
  }

  /**
   * A first session against a fresh server, retried: a freshly started server has been seen to answer
   * the first HELLO with "no CUDA-capable device". Returns the failures seen before one succeeded.
   */
  async probe(server: RunningServer): Promise<string[]> {
    const failures: string[] = [];
    for (let i = 0; i < 4; i++) {
      try {
        await this.run('direct', server.url, ['--rtt', '0'], 30_000);
        return failures;
      } catch (e) {
        failures.push(reasonOf(e));
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    throw new Unavailable(`no session could be opened: ${failures[failures.length - 1]}`);
  }

  /** p50/p99 of the trivial sync calls; sync_rtt_us is the first of them that crossed the wire. */
  async sync(route: Route, server: RunningServer): Promise<{ call: string; figures: Record<string, number> }> {
    const j = numbers(await this.run(route, server.url, ['--rtt', String(RTT_CALLS)], 60_000));
    // A sync call answered inside the intercept would measure nothing; take the first that is not.
    const floor = j.dtoh4_p50_us / 4;
    const calls = [['cudaStreamQuery', 'stream_query'], ['cudaDeviceSynchronize', 'ctx_sync'], ['cudaStreamSynchronize', 'stream_sync'], ['cudaMemcpy D2H 4 B', 'dtoh4']] as const;
    const [call, key] = calls.find(([, k]) => j[`${k}_p50_us`] >= floor) ?? calls[3];
    return { call, figures: { ...j, sync_rtt_us: j[`${key}_p50_us`], sync_rtt_p99_us: j[`${key}_p99_us`] } };
  }

  /** `lane: false` keeps the copies inline through the proxy's relay (REMOTE_GPU_LANE=0), for comparison. */
  async copy(route: Route, server: RunningServer, o: { lane?: boolean } = {}): Promise<Record<string, number>> {
    return numbers(await this.run(route, server.url, ['--copy', String(COPY_MIB)], 150_000, o.lane === false ? { REMOTE_GPU_LANE: '0' } : {}));
  }

  async launch(route: Route, server: RunningServer): Promise<Record<string, number>> {
    return numbers(await this.run(route, server.url, ['--launches', String(LAUNCHES)], 90_000));
  }

  /**
   * The sync-call figure with the intercept talking to the server through bench/c/tcp_echo.c's relay
   * mode instead of the kernel-proxy: what one extra hop costs when the hop itself is as cheap as C can
   * make it, so the proxy's own share can be told apart from the hop's.
   */
  async syncViaCRelay(server: RunningServer): Promise<Record<string, number>> {
    const relay = await startHelper(await this.build.c('tcp_echo'), [String(server.port)]);
    try {
      const j = await this.run('direct', `tcp://127.0.0.1:${relay.firstLine}`, ['--rtt', String(RTT_CALLS)], 60_000);
      return { sync_rtt_us: Number(j.stream_query_p50_us), sync_rtt_p99_us: Number(j.stream_query_p99_us) };
    } finally {
      await relay.stop();
    }
  }

  /**
   * Round trips per step, exactly: the relay counts frames of the session connections (those that
   * launch) for STEPS steps and for none; the difference divided by STEPS is what one step costs.
   */
  async stepCount(route: Route, server: RunningServer): Promise<StepCount> {
    const counter = new FrameCounter({ host: server.host, port: server.port });
    const addr = await counter.listen();
    const url = `tcp://${addr.host}:${addr.port}`;
    // Through the proxy, a standalone `rgpu proxy` (the same KernelProxy `rgpu run` embeds) so its own
    // statistics can be read between runs.
    const proxy = route === 'proxy' ? await startProxy(this.paths, url) : null;
    const via = proxy ? { socket: proxy.socket } : route;
    try {
      const stats = async (): Promise<ProxyStatsSnapshot | null> => (proxy ? proxy.stats().catch(() => null) : null);
      counter.reset();
      const s0 = await stats();
      await this.run(via, url, ['--steps', '0'], 60_000);
      const s1 = await stats();
      const base = counter.sessionTotals();
      counter.reset();
      const j = await this.run(via, url, ['--steps', String(STEPS)], 60_000);
      const s2 = await stats();
      if (j.steps_ok !== true) throw new Unavailable('the step loop computed a wrong result');
      const withSteps = counter.sessionTotals();
      const framesPerStep: Record<string, number> = {};
      for (const [op, n] of Object.entries(withSteps.ops)) {
        const d = (n - (base.ops[op] ?? 0)) / STEPS;
        if (d !== 0) framesPerStep[op] = d;
      }
      return {
        steps: STEPS,
        roundTripsPerStep: (withSteps.roundTrips - base.roundTrips) / STEPS,
        replyRequestsPerStep: (withSteps.replyRequests - base.replyRequests) / STEPS,
        framesPerStep,
        // Timed without the relay, whose held replies slow every wait by its grace period.
        stepUs: Number((await this.run(route, server.url, ['--steps', String(STEPS)], 60_000)).step_us),
        proxyStats: proxy ? proxyDelta(s0, s1, s2) : undefined,
      };
    } finally {
      await proxy?.stop();
      await counter.close();
    }
  }
}
