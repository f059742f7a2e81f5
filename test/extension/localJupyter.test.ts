import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writePlainKernelSpec } from '../../extension/src/servers/kernelspec';
import { LocalJupyter } from '../../extension/src/servers/localJupyter';

const JUPYTER = '/usr/bin/jupyter-server';

describe('extension owned Jupyter server', function () {
  this.timeout(60000);
  let dir: string;
  let j: LocalJupyter | undefined;
  before(function () { if (!fs.existsSync(JUPYTER)) this.skip(); });
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-ext-jup-')); });
  afterEach(async () => { await j?.dispose(); j = undefined; fs.rmSync(dir, { recursive: true, force: true }); });

  it('serves only the remote-gpu kernelspec on 127.0.0.1 behind a token, and stops on dispose', async () => {
    const log: string[] = [];
    j = new LocalJupyter({
      dir, rootDir: dir, jupyterServer: JUPYTER, env: { REMOTE_GPU_PROXY: '/tmp/x.sock' }, log: (l) => log.push(l),
      installKernelSpec: (prefix) => writePlainKernelSpec({ prefix, socket: '/tmp/x.sock', python: '/usr/bin/python3' }),
    });
    const [a, b] = await Promise.all([j.ensureStarted(), j.ensureStarted()]);
    assert.equal(a, b, 'concurrent callers share one start');
    assert.match(a.baseUrl, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.match(a.token, /^[0-9a-f]{48}$/);
    const denied = await fetch(`${a.baseUrl}api/kernelspecs`);
    assert.equal(denied.status, 403);
    const r = await fetch(`${a.baseUrl}api/kernelspecs`, { headers: { Authorization: `token ${a.token}` } });
    const specs = (await r.json()) as { default: string; kernelspecs: Record<string, { spec: { env: Record<string, string> } }> };
    assert.deepEqual(Object.keys(specs.kernelspecs), ['remote-gpu']);
    assert.equal(specs.default, 'remote-gpu');
    assert.deepEqual(await j.runningKernels(), []);
    assert.ok(!log.join('\n').includes(a.token), 'the token never reaches the log');
    await j.dispose();
    await assert.rejects(fetch(`${a.baseUrl}api/status`));
  });
});
