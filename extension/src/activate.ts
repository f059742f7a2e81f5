// The extension: builds the modules and hands every disposable to VS Code. Failures are logged and shown once;
// nothing here blocks notebooks that do not use Remote GPU. Loaded by extension.ts (development) or bundled.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { registerCommands } from './commands/module';
import { tokenSecretKey } from './commands/poolAddress';
import { errorMessage } from './common/errors';
import { HintsClient } from './lsp/client';
import { StatsPanel } from './panel/statsPanel';
import { Methods } from './proxy/protocol';
import { ProxyModel } from './proxy/proxyModel';
import { ProxySupervisor } from './proxy/proxySupervisor';
import { locateRuntime, proxySocketPath } from './proxy/runtime';
import { installKernelSpecWithRuntime } from './servers/kernelspec';
import { LocalJupyter } from './servers/localJupyter';
import { createServersModule } from './servers/module';
import { GpuStatusBar } from './status/statusBar';

let stopAll: (() => Promise<void>) | undefined;

export async function activate(ctx: vscode.ExtensionContext): Promise<void> {
  const out = vscode.window.createOutputChannel('Remote GPU', { log: true });
  ctx.subscriptions.push(out);
  const log = (s: string) => out.info(s);
  try {
    await start(ctx, log);
  } catch (e) {
    out.error(`activation failed: ${errorMessage(e)}`);
    void vscode.window.showErrorMessage(`Remote GPU could not start: ${errorMessage(e)}`);
  }
}

async function start(ctx: vscode.ExtensionContext, log: (s: string) => void): Promise<void> {
  const cfg = () => vscode.workspace.getConfiguration('remoteGpu');
  const runtime = () => locateRuntime(cfg().get<string>('runtimePath', ''), ctx.extensionPath);
  const socket = proxySocketPath();
  fs.mkdirSync(path.dirname(socket), { recursive: true, mode: 0o700 });
  const rt = runtime();
  log(rt ? `runtime: ${rt.cli} (node ${rt.node})` : 'runtime not found: set remoteGpu.runtimePath to a built Remote GPU checkout');

  const proxy = new ProxySupervisor({
    command: () => {
      const r = runtime();
      if (!r) throw new Error('Remote GPU runtime not found (setting remoteGpu.runtimePath)');
      const args = [r.cli, 'proxy', '--stdio', '--socket', socket, '--stats-interval', String(Math.max(250, cfg().get<number>('statistics.refreshMs', 1000)))];
      const gpu = cfg().get<string>('defaultGpuType', '');
      if (gpu) args.push('--gpu', gpu);
      return { command: r.node, args, env: r.nodeEnv };
    },
    log,
    // After every (re)start: the pool and its token go over JSON-RPC, never through argv or the environment.
    onStarted: async (sup) => {
      const url = cfg().get<string>('pool.address', '');
      if (url) {
        const token = await ctx.secrets.get(tokenSecretKey(url));
        await sup.request(Methods.setPool, token ? { url, token } : { url });
      }
    },
  });
  const model = new ProxyModel(proxy, log);
  const statusBar = new GpuStatusBar(vscode, cfg().get<number>('latencyWarningMs', 5));
  const jupyter = new LocalJupyter({
    dir: path.join(ctx.globalStorageUri.fsPath, 'jupyter'),
    rootDir: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? ctx.globalStorageUri.fsPath,
    jupyterServer: cfg().get<string>('jupyterServerPath', '/usr/bin/jupyter-server'),
    installKernelSpec: (prefix) => installKernelSpecWithRuntime(runtime(), {
      prefix, socket, python: cfg().get<string>('pythonPath', '/usr/bin/python3'), gpuType: cfg().get<string>('defaultGpuType', '') || undefined,
    }),
    env: { REMOTE_GPU_PROXY: socket },
    log,
  });
  const servers = createServersModule(vscode, ctx, jupyter, () => model.currentGpuType(), log);
  // tsc's output in a checkout, the esbuild bundle in a .vsix (which ships only the bundles).
  const serverModule = [path.join('out', 'extension', 'src', 'lsp', 'server.js'), path.join('out', 'extension', 'bundle', 'server.js')]
    .map((p) => ctx.asAbsolutePath(p)).find((p) => fs.existsSync(p)) ?? '';
  const hints = new HintsClient(serverModule, log);

  model.onChange(() => {
    statusBar.set({ proxy: model.state, proxyError: proxy.lastError, status: model.status, stats: model.stats, gpuType: model.currentGpuType(), pingMs: model.pingMs });
    if (model.stats) {
      StatsPanel.post(model.stats);
      hints.live({ gpuType: model.currentGpuType(), rttP50Ms: model.stats.rtt.p50Ms, rttP99Ms: model.stats.rtt.p99Ms, h2dBps: model.stats.h2dBps });
    }
  });
  let lastStatus = model.status;
  model.onChange(() => { if (model.status !== lastStatus) { lastStatus = model.status; StatsPanel.postStatus(); } });

  ctx.subscriptions.push(
    statusBar,
    servers,
    { dispose: () => model.dispose() },
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('remoteGpu.latencyWarningMs')) statusBar.set({ warnLatencyMs: cfg().get<number>('latencyWarningMs', 5) });
      if (e.affectsConfiguration('remoteGpu.statistics.refreshMs') || e.affectsConfiguration('remoteGpu.runtimePath')) void proxy.restart();
    }),
  );
  stopAll = async () => {
    StatsPanel.close();
    await Promise.allSettled([hints.dispose(), proxy.dispose(), jupyter.dispose()]);
  };

  proxy.start();
  model.startPolling(2000);
  if (cfg().get<boolean>('languageServer.enabled', true)) {
    hints.start().catch((e) => log(`hints language server failed: ${errorMessage(e)}`));
  }
  // Commands last, so they are disposed first: nothing can invoke them against torn-down modules.
  ctx.subscriptions.push(...registerCommands(vscode, {
    model, jupyter, secrets: ctx.secrets, mediaUri: vscode.Uri.joinPath(ctx.extensionUri, 'media'), log,
    onGpuTypeChanged: (t) => servers.gpuTypeChanged(t), restartKernels: (ids) => servers.restartKernels(ids),
  }));
}

export async function deactivate(): Promise<void> {
  const s = stopAll;
  stopAll = undefined;
  await s?.();
}
