// A notebook controller of our own, talking to the same local Jupyter server through @jupyterlab/services.
// It makes "Remote GPU" usable where the Jupyter extension is missing (and is what the offline e2e test drives).
import type * as vscode from 'vscode';
import type { Kernel, KernelMessage, ServerConnection, Session, SessionManager, KernelManager } from '@jupyterlab/services';
import { errorMessage } from '../common/errors';
import { KERNEL_NAME, type JupyterConnection } from './localJupyter';
import { mapIopub } from './outputs';

export const CONTROLLER_ID = 'remote-gpu';

interface Services { settings: ServerConnection.ISettings; kernels: KernelManager; sessions: SessionManager; baseUrl: string }

export class BuiltinController implements vscode.Disposable {
  private readonly controller: vscode.NotebookController;
  private services: Services | undefined;
  /** One Jupyter session per notebook, keyed by URI string (documents can be re-opened as new objects). */
  private readonly sessions = new Map<string, Promise<Session.ISessionConnection>>();
  private order = 0;

  constructor(private readonly vs: typeof vscode, private readonly ensureServer: () => Promise<JupyterConnection>,
    private readonly log: (s: string) => void, gpuLabel: string) {
    this.controller = vs.notebooks.createNotebookController(CONTROLLER_ID, 'jupyter-notebook', 'Remote GPU');
    this.controller.supportedLanguages = ['python'];
    this.controller.supportsExecutionOrder = true;
    this.controller.description = gpuLabel;
    this.controller.detail = 'Python kernel with a GPU from the Remote GPU pool';
    this.controller.executeHandler = (cells, nb) => this.execute(cells, nb);
    this.controller.interruptHandler = async (nb) => { (await this.sessions.get(nb.uri.toString()))?.kernel?.interrupt(); };
  }

  setGpuLabel(label: string): void { this.controller.description = label; }

  private async connect(): Promise<Services> {
    const c = await this.ensureServer();
    if (this.services && this.services.baseUrl === c.baseUrl) return this.services;
    if (this.services) {
      // The server was restarted: sessions on the old one are gone. (Not on the first connect: the caller has
      // already stored the session being started.)
      this.services.sessions.dispose();
      this.services.kernels.dispose();
      this.sessions.clear();
    }
    const js = await import('@jupyterlab/services');
    const settings = js.ServerConnection.makeSettings({ baseUrl: c.baseUrl, token: c.token, appendToken: true });
    const kernels = new js.KernelManager({ serverSettings: settings });
    const sessions = new js.SessionManager({ kernelManager: kernels, serverSettings: settings });
    await sessions.ready;
    this.services = { settings, kernels, sessions, baseUrl: c.baseUrl };
    return this.services;
  }

  private session(nb: vscode.NotebookDocument): Promise<Session.ISessionConnection> {
    const key = nb.uri.toString();
    let s = this.sessions.get(key);
    if (!s) {
      s = this.connect().then((svc) => svc.sessions.startNew({ path: nb.uri.fsPath, type: 'notebook', name: nb.uri.path.split('/').pop() ?? 'notebook', kernel: { name: KERNEL_NAME } }));
      s.catch(() => this.sessions.delete(key));
      this.sessions.set(key, s);
    }
    return s;
  }

  private async execute(cells: vscode.NotebookCell[], nb: vscode.NotebookDocument): Promise<void> {
    for (const cell of cells) {
      const exec = this.controller.createNotebookCellExecution(cell);
      exec.executionOrder = ++this.order;
      exec.start(Date.now());
      await exec.clearOutput();
      let ok = false;
      try {
        const session = await this.session(nb);
        const kernel = session.kernel as Kernel.IKernelConnection;
        const future = kernel.requestExecute({ code: cell.document.getText(), store_history: true });
        future.onIOPub = (msg: KernelMessage.IIOPubMessage) => { void this.appendOutput(exec, msg.header.msg_type, msg.content as Record<string, unknown>); };
        const reply = await future.done;
        ok = reply.content.status === 'ok';
        if (typeof (reply.content as { execution_count?: number }).execution_count === 'number') exec.executionOrder = (reply.content as { execution_count: number }).execution_count;
      } catch (e) {
        this.log(`cell execution failed: ${errorMessage(e)}`);
        await exec.appendOutput(new this.vs.NotebookCellOutput([this.vs.NotebookCellOutputItem.error({ name: 'Remote GPU', message: errorMessage(e) })]));
      }
      exec.end(ok, Date.now());
      if (!ok) break;
    }
  }

  private appendOutput(exec: vscode.NotebookCellExecution, type: string, content: Record<string, unknown>): Thenable<void> | undefined {
    const m = mapIopub(type, content);
    if (!m) return undefined;
    const I = this.vs.NotebookCellOutputItem;
    const items = m.kind === 'stdout' ? [I.stdout(String(m.parts[0].value))]
      : m.kind === 'stderr' ? [I.stderr(String(m.parts[0].value))]
      : m.kind === 'error' ? [I.error(Object.assign(new Error(m.error!.message), { name: m.error!.name, stack: m.error!.stack }))]
      : m.parts.map((p) => (typeof p.value !== 'string' ? I.json(p.value, p.mime)
        // Jupyter sends binary images base64-encoded in the JSON message.
        : /^image\/(png|jpeg|gif|webp)$/.test(p.mime) ? new this.vs.NotebookCellOutputItem(Buffer.from(p.value, 'base64'), p.mime)
        : I.text(p.value, p.mime)));
    return exec.appendOutput(new this.vs.NotebookCellOutput(items));
  }

  /**
   * Restarts the kernels among `ids` that this controller's sessions hold, through their own connections, and
   * returns the ids it restarted. Behind this connection's back (REST API alone) a restart left, in CI, the next
   * execute request unanswered; KernelConnection.restart() marks the connection as restarting and reconnects
   * its websocket afterwards, as JupyterLab does.
   */
  async restartKernels(ids: readonly string[]): Promise<Set<string>> {
    const done = new Set<string>();
    for (const p of this.sessions.values()) {
      const kernel = await p.then((s) => s.kernel, () => null);
      if (kernel && ids.includes(kernel.id) && !done.has(kernel.id)) {
        await kernel.restart();
        done.add(kernel.id);
      }
    }
    return done;
  }

  /** Kernels started by this controller are on the owned server; a restart there is seen by LocalJupyter too. */
  dispose(): void {
    for (const s of this.sessions.values()) void s.then((x) => x.dispose(), () => undefined);
    this.sessions.clear();
    this.services?.sessions.dispose();
    this.services?.kernels.dispose();
    this.controller.dispose();
  }
}
