import type * as Lc from 'vscode-languageclient/lib/node/main';
type LanguageClient = Lc.LanguageClient;
import type { LiveStats } from './analysis';

// Kept here as well as in server.ts: importing server.ts would start a server inside the extension host.
const LIVE_STATS_NOTIFICATION = 'remoteGpu/liveStats';

/** Starts the hints server for Python notebook cells and files; `live()` forwards the proxy's latest numbers. */
export class HintsClient {
  private client: LanguageClient | undefined;
  private lastSent = 0;

  constructor(private readonly serverModule: string, private readonly log: (s: string) => void) {}

  async start(): Promise<void> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const lc: typeof Lc = require('vscode-languageclient/node');
    const run = { module: this.serverModule, transport: lc.TransportKind.ipc };
    this.client = new lc.LanguageClient('remoteGpuHints', 'Remote GPU Hints', { run, debug: run }, {
      documentSelector: [
        { scheme: 'vscode-notebook-cell', language: 'python' },
        { scheme: 'file', language: 'python' },
        { scheme: 'untitled', language: 'python' },
      ],
    });
    await this.client.start();
    this.log('hints language server started');
  }

  /** Throttled to one message per second: hovers need fresh-enough numbers, not every tick. */
  live(s: LiveStats, vsNow = Date.now()): void {
    if (!this.client?.isRunning() || vsNow - this.lastSent < 1000) return;
    this.lastSent = vsNow;
    void this.client.sendNotification(LIVE_STATS_NOTIFICATION, s);
  }

  async dispose(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c) await c.stop().catch(() => undefined);
  }
}
