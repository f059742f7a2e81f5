// Pure: Jupyter iopub messages → notebook output shapes (mime → text/JSON), kept vscode-free for tests.

export interface OutputPart { mime: string; value: string | object }
export interface MappedOutput { kind: 'stdout' | 'stderr' | 'data' | 'error'; parts: OutputPart[]; error?: { name: string; message: string; stack: string } }

const PREFERRED = ['application/vnd.code.notebook.error', 'text/html', 'image/svg+xml', 'image/png', 'image/jpeg', 'application/json', 'text/markdown', 'text/plain'];

// Strips ANSI colour codes from tracebacks: the notebook renders them as text.
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

export function mapIopub(msgType: string, content: Record<string, unknown>): MappedOutput | undefined {
  switch (msgType) {
    case 'stream':
      return { kind: content.name === 'stderr' ? 'stderr' : 'stdout', parts: [{ mime: 'text/plain', value: String(content.text ?? '') }] };
    case 'execute_result':
    case 'display_data': {
      const data = (content.data ?? {}) as Record<string, unknown>;
      const mimes = Object.keys(data).sort((a, b) => rank(a) - rank(b));
      return { kind: 'data', parts: mimes.map((m) => ({ mime: m, value: typeof data[m] === 'string' || m.endsWith('json') ? data[m] as string | object : String(data[m]) })) };
    }
    case 'error': {
      const tb = Array.isArray(content.traceback) ? content.traceback.map(String).join('\n').replace(ANSI, '') : '';
      return { kind: 'error', parts: [], error: { name: String(content.ename ?? 'Error'), message: String(content.evalue ?? ''), stack: tb } };
    }
    default:
      return undefined;
  }
}

function rank(m: string): number {
  const i = PREFERRED.indexOf(m);
  return i < 0 ? PREFERRED.length : i;
}
