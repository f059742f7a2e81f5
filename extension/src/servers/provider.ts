// The "Remote GPU" entry of the Jupyter kernel picker: one server (the local Jupyter server this extension owns,
// whose only kernelspec is remote-gpu), started lazily when the user picks it.
import type * as vscode from 'vscode';
import type {
  Jupyter, JupyterServer, JupyterServerCollection, JupyterServerCommand, JupyterServerCommandProvider, JupyterServerProvider,
} from '@vscode/jupyter-extension';
import type { JupyterConnection } from './localJupyter';

export const COLLECTION_ID = 'remote-gpu';
export const SERVER_ID = 'remote-gpu-local';

export interface ProviderDeps {
  ensureServer: () => Promise<JupyterConnection>;
  currentGpuType: () => string;
}

export class RemoteGpuServerProvider implements JupyterServerProvider, JupyterServerCommandProvider, vscode.Disposable {
  private readonly collection: JupyterServerCollection;
  private readonly changed: vscode.EventEmitter<void>;
  readonly onDidChangeServers: vscode.Event<void>;
  private started = false;

  constructor(private readonly vs: typeof vscode, jupyter: Jupyter, private readonly deps: ProviderDeps) {
    this.changed = new vs.EventEmitter<void>();
    this.onDidChangeServers = this.changed.event;
    this.collection = jupyter.createJupyterServerCollection(COLLECTION_ID, 'Remote GPU', this);
    this.collection.commandProvider = this;
  }

  /** Relabels the server after the GPU type changed. */
  refresh(): void { this.changed.fire(); }

  private server(): JupyterServer {
    const gpu = this.deps.currentGpuType();
    return { id: SERVER_ID, label: gpu ? `Remote GPU (${gpu})` : 'Remote GPU' };
  }

  provideJupyterServers(): JupyterServer[] {
    // Listed once picked: before that the command below starts it, so the first use shows one clear action.
    return this.started ? [this.server()] : [];
  }

  async resolveJupyterServer(server: JupyterServer): Promise<JupyterServer> {
    const c = await this.deps.ensureServer();
    return { ...server, connectionInformation: { baseUrl: this.vs.Uri.parse(c.baseUrl), token: c.token } };
  }

  provideCommands(): JupyterServerCommand[] {
    const gpu = this.deps.currentGpuType();
    return [{ label: `Start Remote GPU kernel${gpu ? ` on ${gpu}` : ''}`, description: 'local Jupyter server, GPU from the pool', canBeAutoSelected: true }];
  }

  async handleCommand(): Promise<JupyterServer> {
    await this.deps.ensureServer();
    this.started = true;
    this.changed.fire();
    return this.server();
  }

  dispose(): void {
    this.collection.dispose();
    this.changed.dispose();
  }
}
