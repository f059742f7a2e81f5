// A small stand-in for the `vscode` module: just what the extension's classes touch, recording calls so tests
// can assert on them. Injected through the classes' `vs: typeof vscode` parameters.
import type * as vscode from 'vscode';

export class FakeEventEmitter<T> {
  private ls = new Set<(e: T) => void>();
  event = (l: (e: T) => void) => { this.ls.add(l); return { dispose: () => this.ls.delete(l) }; };
  fire(e: T) { for (const l of [...this.ls]) l(e); }
  dispose() { this.ls.clear(); }
}

export class FakeUri {
  constructor(readonly scheme: string, readonly path: string) {}
  static parse(s: string) { const m = /^(\w+):(.*)$/.exec(s); return new FakeUri(m ? m[1] : 'file', m ? m[2] : s); }
  static file(p: string) { return new FakeUri('file', p); }
  static joinPath(u: FakeUri, ...p: string[]) { return new FakeUri(u.scheme, [u.path, ...p].join('/')); }
  get fsPath() { return this.path; }
  toString() { return `${this.scheme}:${this.path}`; }
}

export class FakeStatusBarItem {
  text = ''; tooltip: unknown; backgroundColor: unknown; command: unknown; name = ''; visible = false; disposed = false;
  constructor(readonly id: string) {}
  show() { this.visible = true; }
  hide() { this.visible = false; }
  dispose() { this.disposed = true; }
}

export class FakeWebview {
  html = '';
  posted: unknown[] = [];
  cspSource = 'https://fake.vscode-cdn.net';
  readonly received = new FakeEventEmitter<unknown>();
  onDidReceiveMessage = this.received.event;
  asWebviewUri(u: FakeUri) { return FakeUri.parse(`https://fake.vscode-cdn.net${u.path}`); }
  postMessage(m: unknown) { this.posted.push(JSON.parse(JSON.stringify(m))); return Promise.resolve(true); }
}

export class FakeWebviewPanel {
  readonly webview = new FakeWebview();
  readonly disposedEmitter = new FakeEventEmitter<void>();
  onDidDispose = this.disposedEmitter.event;
  revealed = 0; disposed = false;
  constructor(readonly viewType: string, readonly title: string, readonly options: { localResourceRoots?: FakeUri[]; enableScripts?: boolean }) {}
  reveal() { this.revealed++; }
  dispose() { if (!this.disposed) { this.disposed = true; this.disposedEmitter.fire(); } }
}

export interface FakeVscode {
  vs: typeof vscode;
  statusItems: FakeStatusBarItem[];
  panels: FakeWebviewPanel[];
  executed: { command: string; args: unknown[] }[];
}

export function createFakeVscode(): FakeVscode {
  const statusItems: FakeStatusBarItem[] = [];
  const panels: FakeWebviewPanel[] = [];
  const executed: { command: string; args: unknown[] }[] = [];
  const api = {
    EventEmitter: FakeEventEmitter,
    Uri: FakeUri,
    StatusBarAlignment: { Left: 1, Right: 2 },
    ViewColumn: { Active: -1, Beside: -2, One: 1 },
    ThemeColor: class { constructor(readonly id: string) {} },
    MarkdownString: class { supportThemeIcons = false; constructor(readonly value: string) {} },
    window: {
      createStatusBarItem: (id: string) => { const i = new FakeStatusBarItem(id); statusItems.push(i); return i; },
      createWebviewPanel: (viewType: string, title: string, _col: unknown, options: FakeWebviewPanel['options']) => {
        const p = new FakeWebviewPanel(viewType, title, options); panels.push(p); return p;
      },
    },
    commands: { executeCommand: (command: string, ...args: unknown[]) => { executed.push({ command, args }); return Promise.resolve(); } },
  };
  return { vs: api as unknown as typeof vscode, statusItems, panels, executed };
}
