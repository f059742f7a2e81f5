import type * as vscode from 'vscode';
import { errorMessage } from '../common/errors';
import type { ProxyStatus, Stats } from '../proxy/protocol';
import { buildStatsHtml, makeNonce } from './html';
import { parseFromWebview, sampleOf, type FromWebview, type ToWebview } from './messages';
import type { StatsHistory } from './statsHistory';

export const STATS_VIEW_TYPE = 'remoteGpu.statistics';

const WEBVIEW_COMMANDS: Record<Extract<FromWebview, { type: 'command' }>['command'], string> = {
  switchGpu: 'remoteGpu.switchGpuType',
  connectPool: 'remoteGpu.connectToPool',
  restartProxy: 'remoteGpu.restartProxy',
};

export interface StatsSource {
  history: StatsHistory;
  latestStatus: () => { status: ProxyStatus | undefined; proxy: string; gpuType: string };
}

/** The statistics panel: one at a time, revealed again when shown twice; owns its listeners. */
export class StatsPanel implements vscode.Disposable {
  private static current: StatsPanel | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private ready = false;

  static show(vs: typeof vscode, mediaUri: vscode.Uri, source: StatsSource, log: (s: string) => void): StatsPanel {
    if (StatsPanel.current) { StatsPanel.current.panel.reveal(); return StatsPanel.current; }
    // preserveFocus: the notebook stays the active editor, so running cells while watching the charts just works.
    const panel = vs.window.createWebviewPanel(STATS_VIEW_TYPE, 'Remote GPU Statistics', { viewColumn: vs.ViewColumn.Beside, preserveFocus: true }, {
      enableScripts: true,
      localResourceRoots: [mediaUri],
    });
    StatsPanel.current = new StatsPanel(vs, panel, mediaUri, source, log);
    return StatsPanel.current;
  }

  /** Forwards a stats tick to the open panel, if any. */
  static post(stats: Stats): void { StatsPanel.current?.postStats(stats); }
  static postStatus(): void { StatsPanel.current?.sendStatus(); }
  static get isOpen(): boolean { return StatsPanel.current !== undefined; }
  static close(): void { StatsPanel.current?.dispose(); }

  private constructor(private readonly vs: typeof vscode, readonly panel: vscode.WebviewPanel, mediaUri: vscode.Uri,
    private readonly source: StatsSource, private readonly log: (s: string) => void) {
    const w = panel.webview;
    const u = (...p: string[]) => w.asWebviewUri(vs.Uri.joinPath(mediaUri, ...p)).toString();
    w.html = buildStatsHtml({
      cspSource: w.cspSource, nonce: makeNonce(),
      scriptUri: u('stats.js'), styleUri: u('stats.css'),
      uplotScriptUri: u('vendor', 'uPlot.iife.min.js'), uplotStyleUri: u('vendor', 'uPlot.min.css'),
    });
    this.disposables.push(
      w.onDidReceiveMessage((m: unknown) => this.onMessage(m)),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  handle(m: FromWebview): void {
    if (m.type === 'ready') {
      this.ready = true;
      this.send({ type: 'history', samples: this.source.history.samples() });
      this.sendStatus();
    } else {
      void this.vs.commands.executeCommand(WEBVIEW_COMMANDS[m.command]);
    }
  }

  private onMessage(m: unknown): void {
    try { this.handle(parseFromWebview(m)); } catch (e) { this.log(`ignored webview message: ${errorMessage(e)}`); }
  }

  private postStats(stats: Stats): void {
    if (this.ready) this.send({ type: 'stats', sample: sampleOf(stats), stats });
  }

  private sendStatus(): void {
    if (this.ready) { const s = this.source.latestStatus(); this.send({ type: 'status', status: s.status, proxy: s.proxy, gpuType: s.gpuType }); }
  }

  private send(m: ToWebview): void { void this.panel.webview.postMessage(m); }

  dispose(): void {
    if (StatsPanel.current === this) StatsPanel.current = undefined;
    while (this.disposables.length) this.disposables.pop()!.dispose();
    this.panel.dispose();
  }
}
