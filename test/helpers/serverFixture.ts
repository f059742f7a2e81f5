// Starts a real server on a free loopback port with a FakeBackend, for tests that talk to it over sockets.
import { startServer, type StartOptions, type RunningServer } from '../../gpu-runtime/server/src/main';
import { FakeBackend, type FakeDeviceSpec } from './fakeBackend';

export interface Fixture {
  server: RunningServer;
  backend: FakeBackend;
  port: number;
}

export async function startFakeServer(devices?: FakeDeviceSpec[], opts: Omit<StartOptions, 'backends'> = {}): Promise<Fixture> {
  const backend = new FakeBackend(devices);
  const server = await startServer({ port: 0, ...opts, backends: [backend] });
  return { server, backend, port: server.address.port };
}

/** Resolves when `cond` holds, polling every few ms; rejects after `ms`. */
export async function waitFor(cond: () => boolean, ms = 2000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
