import type * as vscode from 'vscode';
import type { ProxyStatus, Stats } from '../proxy/protocol';
import { statusView, type StatusInputs } from './statusModel';

export const STATUS_ITEM_ID = 'remoteGpu.status';
export const SHOW_STATS_COMMAND = 'remoteGpu.showStatistics';

/** The one status bar item; `update()` re-renders from the latest inputs on every event. */
export class GpuStatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private inputs: StatusInputs;

  constructor(private readonly vs: typeof vscode, warnLatencyMs: number) {
    this.item = vs.window.createStatusBarItem(STATUS_ITEM_ID, vs.StatusBarAlignment.Left, 100);
    this.item.name = 'Remote GPU';
    this.item.command = SHOW_STATS_COMMAND;
    this.inputs = { proxy: 'starting', warnLatencyMs };
    this.update();
    this.item.show();
  }

  set(patch: Partial<StatusInputs>): void {
    this.inputs = { ...this.inputs, ...patch };
    this.update();
  }

  setStatus(status: ProxyStatus | undefined): void { this.set({ status }); }
  setStats(stats: Stats): void { this.set({ stats }); }

  get text(): string { return this.item.text; }

  private update(): void {
    const v = statusView(this.inputs);
    this.item.text = v.text;
    const md = new this.vs.MarkdownString(v.tooltip);
    md.supportThemeIcons = true;
    this.item.tooltip = md;
    this.item.backgroundColor = v.severity === 'error' ? new this.vs.ThemeColor('statusBarItem.errorBackground')
      : v.severity === 'warning' ? new this.vs.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.command = this.inputs.proxy === 'stopped' ? 'remoteGpu.restartProxy' : SHOW_STATS_COMMAND;
  }

  dispose(): void { this.item.dispose(); }
}
