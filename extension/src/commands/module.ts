// The "Remote GPU: …" commands. Each asks the model/proxy and reports failures in one message.
import type * as vscode from 'vscode';
import { errorMessage } from '../common/errors';
import type { LocalJupyter } from '../servers/localJupyter';
import type { ProxyModel } from '../proxy/proxyModel';
import { StatsPanel } from '../panel/statsPanel';
import { gpuPickItems, switchNeedsRestart } from './gpuPick';
import { normalizePoolAddress, tokenSecretKey } from './poolAddress';

export const Commands = {
  switchGpuType: 'remoteGpu.switchGpuType',
  connectToPool: 'remoteGpu.connectToPool',
  showStatistics: 'remoteGpu.showStatistics',
  restartProxy: 'remoteGpu.restartProxy',
} as const;

export interface CommandDeps {
  model: ProxyModel;
  jupyter: LocalJupyter;
  secrets: vscode.SecretStorage;
  mediaUri: vscode.Uri;
  log: (s: string) => void;
  onGpuTypeChanged: (type: string) => void;
  restartKernels: (ids: readonly string[]) => Promise<void>;
}

export function registerCommands(vs: typeof vscode, d: CommandDeps): vscode.Disposable[] {
  const fail = (what: string) => (e: unknown) => { d.log(`${what}: ${errorMessage(e)}`); void vs.window.showErrorMessage(`Remote GPU: ${what} failed: ${errorMessage(e)}`); };

  async function switchGpuType(): Promise<void> {
    const inv = await d.model.inventory();
    if (!inv.types.length) { void vs.window.showWarningMessage('Remote GPU: the pool offers no GPU types.'); return; }
    const current = d.model.currentGpuType();
    const pick = await vs.window.showQuickPick(gpuPickItems(inv, current), {
      title: 'Remote GPU: Switch GPU Type', placeHolder: 'Select GPU type', matchOnDescription: true, matchOnDetail: true,
    });
    if (!pick || pick.type === current) return;
    const kernels = await d.jupyter.runningKernels().catch(() => []);
    if (switchNeedsRestart(current, pick.type, kernels.length)) {
      const restart = 'Switch and Restart';
      const answer = await vs.window.showWarningMessage(
        `Switch to ${pick.type}? ${kernels.length} running kernel${kernels.length > 1 ? 's' : ''} will restart: device memory cannot move to another GPU, so variables on the GPU are lost.`,
        { modal: true }, restart);
      if (answer !== restart) return;
    }
    await d.model.setGpuType(pick.type);
    await d.restartKernels(kernels.map((k) => k.id));
    d.onGpuTypeChanged(pick.type);
    void vs.window.setStatusBarMessage(`Remote GPU: now ${pick.type}${kernels.length ? `, ${kernels.length} kernel(s) restarted` : ''}`, 4000);
  }

  async function connectToPool(): Promise<void> {
    const cfg = vs.workspace.getConfiguration('remoteGpu');
    const raw = await vs.window.showInputBox({
      title: 'Remote GPU: Connect to Pool', prompt: 'Pool address (tcp://host:port on loopback, tls://host:port elsewhere)',
      value: cfg.get<string>('pool.address') || '', placeHolder: 'tls://gpu-pool.example.com:7447',
      validateInput: (v) => { try { normalizePoolAddress(v); return undefined; } catch (e) { return errorMessage(e); } },
    });
    if (raw === undefined) return;
    const url = normalizePoolAddress(raw);
    const stored = await d.secrets.get(tokenSecretKey(url));
    const token = await vs.window.showInputBox({
      title: `Remote GPU: token for ${url}`, password: true, ignoreFocusOut: true,
      prompt: stored ? 'Leave empty to keep the stored token' : 'Access token (kept in VS Code secret storage, never in settings)',
    });
    if (token === undefined) return;
    if (token) await d.secrets.store(tokenSecretKey(url), token);
    await cfg.update('pool.address', url, vs.ConfigurationTarget.Global);
    await d.model.setPool(url, token || stored);
    const st = d.model.status;
    if (st && !st.pool.connected) void vs.window.showWarningMessage(`Remote GPU: ${url} is unreachable${st.pool.error ? `: ${st.pool.error}` : ''}`);
  }

  return [
    vs.commands.registerCommand(Commands.switchGpuType, () => switchGpuType().catch(fail('switching GPU type'))),
    vs.commands.registerCommand(Commands.connectToPool, () => connectToPool().catch(fail('connecting to the pool'))),
    vs.commands.registerCommand(Commands.showStatistics, () => {
      StatsPanel.show(vs, d.mediaUri, { history: d.model.history, latestStatus: () => ({ status: d.model.status, proxy: d.model.state, gpuType: d.model.currentGpuType() }) }, d.log);
    }),
    vs.commands.registerCommand(Commands.restartProxy, () => d.model.proxy.restart().catch(fail('restarting the proxy'))),
  ];
}
