// A standalone kernel-proxy (`rgpu proxy`) for the bench, so that its own statistics (rgpu/stats on the
// `.ctl` JSON-RPC socket) can be read around a run and set beside the relay's exact frame count.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnHelper } from './proc';
import { Paths, requireCli, Unavailable } from './stack';

export interface ProxyStatsSnapshot {
  ops: Record<string, { count: number }>;
  rtt: { samples: number; p50Ms: number };
}

export interface StandaloneProxy {
  socket: string;
  stats(): Promise<ProxyStatsSnapshot>;
  stop(): Promise<void>;
}

type ProxyRequest = (ctlPath: string, method: string) => Promise<unknown>;

function loadProxyRequest(paths: Paths): ProxyRequest {
  const file = join(paths.root, 'out', 'gpu-runtime', 'cli', 'src', 'proxyRequest.js');
  // Loaded at run time so the bench builds and runs even while the CLI is missing or changing.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(file) as { proxyRequest?: ProxyRequest };
  if (typeof mod.proxyRequest !== 'function') throw new Unavailable(`${file} exports no proxyRequest`);
  return mod.proxyRequest;
}

async function waitFor(path: string, ms: number, output: string[]): Promise<void> {
  const until = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > until) throw new Unavailable(`kernel-proxy did not create ${path} within ${ms} ms: ${output.slice(-2).join(' | ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startProxy(paths: Paths, poolUrl: string): Promise<StandaloneProxy> {
  requireCli(paths);
  const request = loadProxyRequest(paths);
  const dir = mkdtempSync(join(tmpdir(), 'rgpu-bench-proxy-'));
  const socket = join(dir, 'proxy.sock');
  const env = { ...process.env, RGPU_POOL: poolUrl };
  // The proxy may print nothing; readiness is its control socket appearing.
  const helper = spawnHelper(process.execPath, [paths.cliMain, 'proxy', '--socket', socket, '--pool', poolUrl], { env });
  try {
    await waitFor(`${socket}.ctl`, 20_000, helper.output);
    return {
      socket,
      stats: async () => (await request(`${socket}.ctl`, 'rgpu/stats')) as ProxyStatsSnapshot,
      stop: async () => {
        try {
          await request(`${socket}.ctl`, 'rgpu/shutdown');
        } catch {
          // already gone
        }
        await helper.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await helper.stop();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
