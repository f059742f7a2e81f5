import * as assert from 'node:assert/strict';
import type { Jupyter, JupyterServerProvider } from '@vscode/jupyter-extension';
import { RemoteGpuServerProvider } from '../../extension/src/servers/provider';
import { createFakeVscode, FakeUri } from './fakeVscode';

describe('extension Jupyter server provider', () => {
  it('registers "Remote GPU", starts the owned server on the command and resolves its connection', async () => {
    const f = createFakeVscode();
    const created: { id: string; label: string; provider: JupyterServerProvider; commandProvider?: unknown; disposed: boolean }[] = [];
    const jupyter = {
      kernels: { getKernel: async () => undefined },
      createJupyterServerCollection: (id: string, label: string, provider: JupyterServerProvider) => {
        const c = { id, label, provider, commandProvider: undefined as unknown, disposed: false, dispose() { c.disposed = true; } };
        created.push(c);
        return c;
      },
    } as unknown as Jupyter;
    let starts = 0;
    let gpu = 'T4';
    const p = new RemoteGpuServerProvider(f.vs, jupyter, {
      ensureServer: async () => { starts++; return { baseUrl: 'http://127.0.0.1:4242/', token: 'abc' }; },
      currentGpuType: () => gpu,
    });
    assert.equal(created.length, 1);
    assert.equal(created[0].id, 'remote-gpu');
    assert.equal(created[0].label, 'Remote GPU');
    assert.equal(created[0].commandProvider, p);
    assert.deepEqual(p.provideJupyterServers(), [], 'nothing listed before first use');
    const cmds = p.provideCommands();
    assert.equal(cmds.length, 1);
    assert.equal(cmds[0].label, 'Start Remote GPU kernel on T4');
    assert.equal(cmds[0].canBeAutoSelected, true);
    let changed = 0;
    p.onDidChangeServers(() => changed++);
    const server = await p.handleCommand();
    assert.equal(starts, 1);
    assert.equal(changed, 1);
    assert.deepEqual(server, { id: 'remote-gpu-local', label: 'Remote GPU (T4)' });
    gpu = 'A100-40GB';
    p.refresh();
    assert.deepEqual(p.provideJupyterServers().map((s) => s.label), ['Remote GPU (A100-40GB)']);
    const resolved = await p.resolveJupyterServer(server);
    assert.equal(String(resolved.connectionInformation!.baseUrl), String(FakeUri.parse('http://127.0.0.1:4242/')));
    assert.equal(resolved.connectionInformation!.token, 'abc');
    p.dispose();
    assert.equal(created[0].disposed, true);
  });
});
