/** A kernel on a Jupyter server driven through @jupyterlab/services: execute, interrupt, restart. */
import { KernelManager, KernelMessage, ServerConnection, Session, SessionManager } from '@jupyterlab/services';

/** nbformat 4 output. */
export type CellOutput =
  | { output_type: 'stream'; name: 'stdout' | 'stderr'; text: string }
  | { output_type: 'execute_result'; data: Record<string, unknown>; metadata: Record<string, unknown>; execution_count: number | null }
  | { output_type: 'display_data'; data: Record<string, unknown>; metadata: Record<string, unknown> }
  | { output_type: 'error'; ename: string; evalue: string; traceback: string[] };

export interface ExecuteResult {
  status: 'ok' | 'error' | 'abort';
  executionCount: number | null;
  outputs: CellOutput[];
  ms: number;
}

export function streamText(outputs: CellOutput[], name: 'stdout' | 'stderr' = 'stdout'): string {
  return outputs.map((o) => (o.output_type === 'stream' && o.name === name ? o.text : '')).join('');
}

export function outputText(o: CellOutput): string {
  switch (o.output_type) {
    case 'stream': return o.text;
    case 'error': return `${o.ename}: ${o.evalue}\n`;
    default: return String(o.data['text/plain'] ?? '') + '\n';
  }
}

export class NotebookKernel {
  private constructor(
    private readonly kernelManager: KernelManager,
    private readonly sessionManager: SessionManager,
    readonly session: Session.ISessionConnection,
  ) {}

  static async start(baseUrl: string, token: string, kernelName: string, notebookPath: string): Promise<NotebookKernel> {
    const serverSettings = ServerConnection.makeSettings({ baseUrl, token, appendToken: true });
    const kernelManager = new KernelManager({ serverSettings });
    const sessionManager = new SessionManager({ kernelManager, serverSettings });
    await sessionManager.ready;
    const session = await sessionManager.startNew({ path: notebookPath, type: 'notebook', name: notebookPath, kernel: { name: kernelName } });
    const k = new NotebookKernel(kernelManager, sessionManager, session);
    await k.waitIdle(60000);
    return k;
  }

  get kernel() {
    const k = this.session.kernel;
    if (!k) throw new Error('session has no kernel');
    return k;
  }

  /** Resolves once the kernel's websocket is connected and it reports idle (polled: few signals to miss). */
  async waitIdle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const k = this.session.kernel;
      if (k && k.connectionStatus === 'connected' && k.status === 'idle') return;
      if (k && k.status === 'dead') throw new Error('kernel died while starting (see the Jupyter server log)');
      if (Date.now() > deadline) throw new Error(`kernel not ready after ${timeoutMs} ms (status ${k?.status}, ${k?.connectionStatus})`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async execute(code: string, opts: { timeoutMs?: number; onOutput?: (o: CellOutput) => void } = {}): Promise<ExecuteResult> {
    const t0 = performance.now();
    const outputs: CellOutput[] = [];
    const push = (o: CellOutput) => { outputs.push(o); opts.onOutput?.(o); };
    const future = this.kernel.requestExecute({ code, store_history: true, stop_on_error: true });
    future.onIOPub = (msg: KernelMessage.IIOPubMessage) => {
      const c = msg.content as Record<string, any>;
      switch (msg.header.msg_type) {
        case 'stream': {
          const last = outputs[outputs.length - 1];
          // Merge consecutive chunks of one stream, as Jupyter front ends do when saving.
          if (last && last.output_type === 'stream' && last.name === c.name) { last.text += c.text; opts.onOutput?.({ ...last, text: c.text }); }
          else push({ output_type: 'stream', name: c.name, text: c.text });
          break;
        }
        case 'execute_result': push({ output_type: 'execute_result', data: c.data, metadata: c.metadata ?? {}, execution_count: c.execution_count ?? null }); break;
        case 'display_data': push({ output_type: 'display_data', data: c.data, metadata: c.metadata ?? {} }); break;
        case 'error': push({ output_type: 'error', ename: c.ename, evalue: c.evalue, traceback: c.traceback ?? [] }); break;
        case 'clear_output': outputs.length = 0; break;
      }
    };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, rej) => {
      if (opts.timeoutMs) timer = setTimeout(() => rej(new Error(`cell did not finish within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    });
    try {
      const reply = await Promise.race([future.done, timeout]);
      const content = reply.content as { status: 'ok' | 'error' | 'abort'; execution_count?: number };
      return { status: content.status, executionCount: content.execution_count ?? null, outputs, ms: performance.now() - t0 };
    } finally {
      clearTimeout(timer);
    }
  }

  interrupt(): Promise<void> { return this.kernel.interrupt(); }

  async restart(): Promise<void> {
    await this.kernel.restart();
    await this.waitIdle(60000);
  }

  async shutdown(): Promise<void> {
    try { await this.session.shutdown(); } finally { this.dispose(); }
  }

  /** @lumino/polling leaves timers behind after dispose; callers that must exit use process.exit. */
  dispose(): void {
    this.session.dispose();
    this.sessionManager.dispose();
    this.kernelManager.dispose();
  }
}
