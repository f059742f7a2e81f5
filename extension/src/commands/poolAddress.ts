import { BadPoolAddressError } from '../common/errors';

/** Accepts `tcp://host:port`, `tls://host:port` or bare `host:port` (taken as TLS unless loopback). */
export function normalizePoolAddress(input: string): string {
  const s = input.trim();
  if (!s) throw new BadPoolAddressError('empty pool address');
  const m = /^(?:(tcp|tls):\/\/)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(s);
  if (!m) throw new BadPoolAddressError(`"${s}" is not tcp://host:port or tls://host:port`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new BadPoolAddressError(`port ${port} out of range`);
  const loopback = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(m[2]);
  const scheme = m[1] ?? (loopback ? 'tcp' : 'tls');
  return `${scheme}://${m[2]}:${port}`;
}

export const tokenSecretKey = (url: string) => `remoteGpu.poolToken:${url}`;
