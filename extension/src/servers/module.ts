// Wires the owned Jupyter server to the two ways a notebook reaches it: the Jupyter extension's kernel picker
// (server collection "Remote GPU") and, where that extension is missing, our own notebook controller.
import type * as vscode from 'vscode';
import { errorMessage } from '../common/errors';
import { BuiltinController } from './builtinController';
import { JUPYTER_EXTENSION_ID, getJupyterApi } from './jupyterApi';
import type { LocalJupyter } from './localJupyter';
import { RemoteGpuServerProvider } from './provider';

export interface ServersModule extends vscode.Disposable {
  gpuTypeChanged(type: string): void;
  /** Restarts these kernels of the owned server: the built-in controller's through its own connections. */
  restartKernels(ids: readonly string[]): Promise<void>;
}

export function createServersModule(vs: typeof vscode, ctx: vscode.ExtensionContext, jupyter: LocalJupyter,
  currentGpuType: () => string, log: (s: string) => void): ServersModule {
  let provider: RemoteGpuServerProvider | undefined;
  let controller: BuiltinController | undefined;
  let attached = false;
  const disposables: vscode.Disposable[] = [];
  const ensureServer = () => jupyter.ensureStarted();

  async function attach(): Promise<void> {
    if (attached) return;
    attached = true;
    const mode = vs.workspace.getConfiguration('remoteGpu').get<string>('builtinController', 'auto');
    const api = await getJupyterApi(vs, log);
    if (api) {
      try {
        provider = new RemoteGpuServerProvider(vs, api, { ensureServer, currentGpuType });
        log('registered the "Remote GPU" Jupyter server collection');
      } catch (e) { log(`createJupyterServerCollection failed: ${errorMessage(e)}`); }
    } else {
      void tellAboutJupyter();
    }
    if (mode === 'always' || (mode === 'auto' && !provider)) {
      controller = new BuiltinController(vs, ensureServer, log, currentGpuType() || 'pool default GPU');
      log('registered the built-in "Remote GPU" notebook controller');
    }
  }

  async function tellAboutJupyter(): Promise<void> {
    const key = 'remoteGpu.jupyterHintShown';
    if (ctx.globalState.get<boolean>(key)) return;
    await ctx.globalState.update(key, true);
    const install = 'Install Jupyter';
    const a = await vs.window.showInformationMessage(
      'Remote GPU: install the Jupyter extension (ms-toolsai.jupyter) to choose "Remote GPU" in the Jupyter kernel picker. Until then the built-in "Remote GPU" kernel is available.', install);
    if (a === install) await vs.commands.executeCommand('workbench.extensions.installExtension', JUPYTER_EXTENSION_ID);
  }

  // The Jupyter API should be touched when a notebook opens, not at startup (it activates the whole extension).
  if (vs.workspace.notebookDocuments.length) void attach();
  else disposables.push(vs.workspace.onDidOpenNotebookDocument(() => { void attach(); }));

  return {
    gpuTypeChanged(type: string) { provider?.refresh(); controller?.setGpuLabel(type); },
    async restartKernels(ids: readonly string[]) {
      const done = (await controller?.restartKernels(ids)) ?? new Set<string>();
      for (const id of ids) if (!done.has(id)) await jupyter.restartKernel(id);
    },
    dispose() {
      while (disposables.length) disposables.pop()!.dispose();
      controller?.dispose();
      provider?.dispose();
    },
  };
}
