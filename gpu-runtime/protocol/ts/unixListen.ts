// Listening on a Unix socket safely, for the kernel-proxy and for a server on `--listen unix:PATH`: the
// socket is made 0600 (its file permissions are the access check), and a stale socket file left by a
// crashed process is replaced while a live one is never stolen.
import * as fs from 'node:fs';
import * as net from 'node:net';

/** true when something accepts connections on the Unix socket `p`. */
export function answers(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(p);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** Another live process serves the path. */
export class SocketBusyError extends Error {
  constructor(readonly path: string) {
    super(`another process already serves ${path}`);
    this.name = 'SocketBusyError';
  }
}

/** Listens on a Unix socket (mode 0600); a leftover socket file nobody answers on is removed first. */
export async function listenUnix(server: net.Server, p: string): Promise<void> {
  if (fs.existsSync(p)) {
    if (await answers(p)) throw new SocketBusyError(p);
    fs.rmSync(p, { force: true });
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(p, () => {
      server.off('error', reject);
      resolve();
    });
  });
  fs.chmodSync(p, 0o600);
}
