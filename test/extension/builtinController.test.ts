// The built-in notebook controller against a real jupyter-server and ipykernel: cells run, and a kernel restarted
// for a GPU switch runs the next cell on the fresh kernel (the e2e test's flaky step, reduced to its core).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as vscode from 'vscode';
import { BuiltinController } from '../../extension/src/servers/builtinController';
import { writePlainKernelSpec } from '../../extension/src/servers/kernelspec';
import { LocalJupyter } from '../../extension/src/servers/localJupyter';

const JUPYTER = '/usr/bin/jupyter-server';

interface Ran { ok: boolean; text: string }

/** Just the notebook surface BuiltinController touches; outputs are flattened to text. */
function fakeNotebookApi(ran: Ran[]): { vs: typeof vscode; run: (code: string) => Promise<Ran> } {
  let handler: ((cells: vscode.NotebookCell[], nb: vscode.NotebookDocument) => Promise<void>) | undefined;
  const item = (mime: string) => (v: unknown) => ({ mime, text: v instanceof Error ? `${v.name}: ${v.message}` : String(typeof v === 'object' ? JSON.stringify(v) : v) });
  const vs = {
    notebooks: {
      createNotebookController: () => ({
        set executeHandler(h: typeof handler) { handler = h; },
        get executeHandler() { return handler; },
        dispose() { /* nothing held */ },
        createNotebookCellExecution: () => {
          const r: Ran = { ok: false, text: '' };
          return {
            executionOrder: 0, start() { /* timing only */ }, clearOutput: async () => undefined,
            appendOutput: async (o: { items: { text: string }[] }) => { r.text += o.items.map((i) => i.text).join(''); },
            end(ok: boolean) { r.ok = ok; ran.push(r); },
          };
        },
      }),
    },
    NotebookCellOutputItem: { stdout: item('stdout'), stderr: item('stderr'), error: item('error'), json: item('json'), text: item('text') },
    NotebookCellOutput: class { constructor(readonly items: unknown[]) {} },
  } as unknown as typeof vscode;
  const nb = { uri: { toString: () => 'file:///nb.ipynb', fsPath: '/tmp/nb.ipynb', path: '/tmp/nb.ipynb' } } as unknown as vscode.NotebookDocument;
  const run = async (code: string) => {
    const n = ran.length;
    await handler!([{ document: { getText: () => code } } as unknown as vscode.NotebookCell], nb);
    assert.equal(ran.length, n + 1, 'one execution ended');
    return ran[n];
  };
  return { vs, run };
}

describe('extension built-in notebook controller', function () {
  this.timeout(120000);
  let dir: string;
  let j: LocalJupyter | undefined;
  let c: BuiltinController | undefined;
  before(function () { if (!fs.existsSync(JUPYTER)) this.skip(); });
  afterEach(async () => { c?.dispose(); await j?.dispose(); c = j = undefined; fs.rmSync(dir, { recursive: true, force: true }); });

  it('runs cells on the kernel, and after restartKernels the next cell runs on the fresh kernel', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-ext-ctl-'));
    j = new LocalJupyter({
      dir, rootDir: dir, jupyterServer: JUPYTER, env: {}, log: () => undefined,
      installKernelSpec: (prefix) => writePlainKernelSpec({ prefix, socket: '/tmp/x.sock', python: '/usr/bin/python3' }),
    });
    const ran: Ran[] = [];
    const { vs, run } = fakeNotebookApi(ran);
    const jup = j;
    c = new BuiltinController(vs, () => jup.ensureStarted(), () => undefined, 'T4');
    const first = await run('import os\nx = 41\nprint("pid", os.getpid())');
    assert.ok(first.ok, first.text);
    const pid1 = /pid (\d+)/.exec(first.text)?.[1];
    assert.ok(pid1, first.text);
    const kernels = await j.runningKernels();
    assert.equal(kernels.length, 1);
    const restarted = await c.restartKernels([kernels[0].id, 'not-ours']);
    assert.deepEqual([...restarted], [kernels[0].id], 'only the controller\'s kernel is restarted through it');
    const second = await run('import os\nprint("pid", os.getpid(), "x" in globals())');
    assert.ok(second.ok, second.text);
    const m = /pid (\d+) (True|False)/.exec(second.text);
    assert.ok(m, second.text);
    assert.notEqual(m[1], pid1, 'a new kernel process');
    assert.equal(m[2], 'False', 'the old kernel\'s variables are gone');
  });
});
