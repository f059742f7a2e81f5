// `rgpu smi`: the pool's GPUs, their use, sessions and queue, from INVENTORY. Asks the pool directly when
// one is named (--pool / RGPU_POOL); otherwise a running kernel-proxy (which knows its pool, embedded or
// not) and, failing that, a server at the default address.
import { parseArgs } from 'node:util';
import { PoolClient } from '../../../kernel-proxy/src/poolClient';
import { DEFAULT_PORT, parsePoolUrl, readTokenFile } from '../../../kernel-proxy/src/poolUrl';
import { answers, runningProxySockets } from '../../../kernel-proxy/src/socketPath';
import { UsageError } from '../../../kernel-proxy/src/errors';
import { proxyRequest } from './proxyRequest';
import { formatSmi, type SmiInventory } from './smiTable';

export const SMI_USAGE = `usage: rgpu smi [--pool URL] [--token-file FILE] [--socket PATH] [--json]
  Shows the pool's GPUs, their memory use, sessions and queue.
  --pool        tcp://HOST:PORT or tls://HOST:PORT (default $RGPU_POOL; else the running kernel-proxy at
                --socket, else the per-user proxy or a VS Code window's, else tcp://127.0.0.1:${DEFAULT_PORT})
  --token-file  pool token file (default $RGPU_TOKEN_FILE)
  --json        print the INVENTORY reply as JSON`;

export async function runSmi(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: { pool: { type: 'string' }, 'token-file': { type: 'string' }, socket: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }).values;
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n${SMI_USAGE}`);
  }
  if (v.help) {
    out(`${SMI_USAGE}\n`);
    return 0;
  }
  let pool = v.pool ?? (process.env.RGPU_POOL || undefined);
  let inv: unknown;
  let source: string;
  // A named socket is used if it answers; otherwise the first live proxy found (already probed).
  const socket = pool ? undefined
    : v.socket !== undefined ? ((await answers(`${v.socket}.ctl`)) ? v.socket : undefined)
    : (await runningProxySockets())[0];
  if (socket) {
    const status = (await proxyRequest(`${socket}.ctl`, 'rgpu/status')) as { pool?: { url?: string; embedded?: boolean } };
    inv = await proxyRequest(`${socket}.ctl`, 'rgpu/inventory');
    // The embedded server's address is a private socket of the proxy's: naming it would tell the user nothing.
    source = `${status.pool?.embedded ? 'embedded server' : (status.pool?.url ?? '?')} (via ${socket})`;
  } else {
    pool ??= `tcp://127.0.0.1:${DEFAULT_PORT}`;
    const url = parsePoolUrl(pool);
    const tokenFile = v['token-file'] ?? (process.env.RGPU_TOKEN_FILE || undefined);
    const client = new PoolClient({ url, token: tokenFile ? readTokenFile(tokenFile) : '', reconnect: false });
    client.start();
    try {
      await client.whenReady();
      inv = await client.inventory();
    } finally {
      client.stop();
    }
    source = url.href;
  }
  out(v.json ? `${JSON.stringify(inv, null, 2)}\n` : formatSmi(inv as SmiInventory, source));
  return 0;
}

