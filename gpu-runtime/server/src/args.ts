// `rgpu serve` options: parsed with node:util parseArgs (no dependency needed for this flat flag set).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ServerError } from './errors';

export const DEFAULT_LISTEN = '127.0.0.1:7447';
export const DEFAULT_DEVICES = 'emulated:T4x2,emulated:A100-40GB';

export interface ServeArgs {
  host: string;
  port: number;
  /** --listen unix:PATH: a Unix socket (mode 0600) instead of TCP; its file permissions are the access check. */
  socketPath?: string;
  devices: string;
  token?: string;
  tlsCert?: string;
  tlsKey?: string;
  mode: 'exclusive' | 'shared';
  memQuota?: number;
  metrics?: { host: string; port: number };
  maxConnections?: number;
  maxConnectionsPerAddress?: number;
  /** --devices cuda: run sessions in the server process instead of one worker process each. */
  cudaInProcess: boolean;
  /** Emulated devices: block worker threads for large launches (0: every launch on the server thread). */
  emuWorkers?: number;
}

export const SERVE_USAGE = `usage: rgpu serve [--listen HOST:PORT | --listen unix:PATH] [--devices SPEC] [--token TOKEN | --token-file FILE]
                  [--tls-cert FILE --tls-key FILE] [--exclusive | --shared] [--mem-quota BYTES]
                  [--metrics HOST:PORT] [--max-connections N] [--max-connections-per-address N]
                  [--cuda-in-process] [--emu-workers N]
  --devices  cuda | emulated:TYPE[xN],...   (default ${DEFAULT_DEVICES})
  --listen   default ${DEFAULT_LISTEN}; a non-loopback address needs a token; unix:PATH listens on a
             Unix socket only its owner may use
  --max-connections              connections served at once (default 256); more get DEVICE_UNAVAILABLE
  --max-connections-per-address  the same per remote address (default 64)
  --cuda-in-process  with --devices cuda, run sessions in the server process (no per-session worker
                     process: device printf then goes to the server's stdout and a driver crash ends
                     every session)
  --emu-workers  emulated devices: N worker threads run the blocks of large launches (default
                 $RGPU_EMU_WORKERS, else the host's CPU count up to 4; 0: all on the server thread)`;

/** "host:port", "[v6]:port" or ":port" / "port" (host defaults to 127.0.0.1). */
export function parseHostPort(s: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(s) ?? /^()()(\d+)$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ServerError('RGPU_ERR_BAD_ARGS', `${what}: expected HOST:PORT, got "${s}"`);
  }
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

/** --listen: HOST:PORT as parseHostPort, or unix:PATH (an absolute path). */
export function parseListen(s: string): { host: string; port: number; socketPath?: string } {
  if (!s.startsWith('unix:')) return parseHostPort(s, '--listen');
  const p = s.slice('unix:'.length);
  if (!p.startsWith('/')) throw new ServerError('RGPU_ERR_BAD_ARGS', `--listen: expected unix:/ABSOLUTE/PATH, got "${s}"`);
  return { host: '127.0.0.1', port: 0, socketPath: p };
}

/** Byte counts with optional binary suffix: 4096, 512M, 2G, 1.5GiB. */
export function parseBytes(s: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(s.trim());
  if (!m) throw new ServerError('RGPU_ERR_BAD_ARGS', `${what}: expected a byte count such as 2G, got "${s}"`);
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.floor(Number(m[1]) * mult);
}

/** An integer option of at least `min` (default 1). */
export function parseCount(s: string, what: string, min = 1): number {
  const n = Number(s);
  if (!/^\d+$/.test(s.trim()) || !Number.isSafeInteger(n) || n < min) throw new ServerError('RGPU_ERR_BAD_ARGS', `${what}: expected ${min === 1 ? 'a positive integer' : `an integer >= ${min}`}, got "${s}"`);
  return n;
}

/** --help: not an error, the caller prints SERVE_USAGE and exits 0. */
export class ServeHelpRequested extends Error {
  readonly code = 'RGPU_ERR_HELP';
  constructor() {
    super(SERVE_USAGE);
    this.name = 'ServeHelpRequested';
  }
}

export function parseServeArgs(argv: string[]): ServeArgs {
  let v;
  try {
    v = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        listen: { type: 'string' },
        devices: { type: 'string' },
        token: { type: 'string' },
        'token-file': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        exclusive: { type: 'boolean' },
        shared: { type: 'boolean' },
        'mem-quota': { type: 'string' },
        metrics: { type: 'string' },
        'max-connections': { type: 'string' },
        'max-connections-per-address': { type: 'string' },
        'cuda-in-process': { type: 'boolean' },
        'emu-workers': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    throw new ServerError('RGPU_ERR_BAD_ARGS', `${(e as Error).message}\n${SERVE_USAGE}`, { cause: e });
  }
  if (v.help) throw new ServeHelpRequested();
  if (v.exclusive && v.shared) throw new ServerError('RGPU_ERR_BAD_ARGS', '--exclusive and --shared exclude each other');
  if (v.token !== undefined && v['token-file'] !== undefined) {
    throw new ServerError('RGPU_ERR_BAD_ARGS', '--token and --token-file exclude each other');
  }
  if ((v['tls-cert'] === undefined) !== (v['tls-key'] === undefined)) {
    throw new ServerError('RGPU_ERR_BAD_ARGS', '--tls-cert and --tls-key go together');
  }
  let token = v.token;
  if (v['token-file'] !== undefined) {
    try {
      token = readFileSync(v['token-file'], 'utf8').trim();
    } catch (e) {
      throw new ServerError('RGPU_ERR_BAD_ARGS', `cannot read --token-file ${v['token-file']}: ${(e as Error).message}`, { cause: e });
    }
    if (!token) throw new ServerError('RGPU_ERR_BAD_ARGS', `--token-file ${v['token-file']} is empty`);
  }
  const listen = parseListen(v.listen ?? DEFAULT_LISTEN);
  return {
    ...listen,
    devices: v.devices ?? DEFAULT_DEVICES,
    token,
    tlsCert: v['tls-cert'],
    tlsKey: v['tls-key'],
    mode: v.shared ? 'shared' : 'exclusive',
    memQuota: v['mem-quota'] !== undefined ? parseBytes(v['mem-quota'], '--mem-quota') : undefined,
    metrics: v.metrics !== undefined ? parseHostPort(v.metrics, '--metrics') : undefined,
    maxConnections: v['max-connections'] !== undefined ? parseCount(v['max-connections'], '--max-connections') : undefined,
    maxConnectionsPerAddress: v['max-connections-per-address'] !== undefined ? parseCount(v['max-connections-per-address'], '--max-connections-per-address') : undefined,
    cudaInProcess: v['cuda-in-process'] ?? false,
    emuWorkers: v['emu-workers'] !== undefined ? parseCount(v['emu-workers'], '--emu-workers', 0) : undefined,
  };
}
