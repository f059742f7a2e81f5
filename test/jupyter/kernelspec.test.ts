import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  buildKernelSpec, installKernelSpec, kernelsDir, launcherPath, listKernelSpecs, runKernelCommand, uninstallKernelSpec,
} from '../../kernel-proxy/src/kernelspec';
import { kernelEnv, parseLauncherArgs } from '../../kernel-proxy/src/kernelLauncher';
import { KernelUsageError, PythonNotFoundError } from '../../kernel-proxy/src/kernelErrors';
import { interceptDir, pythonExtensionDir, shimDir } from '../../kernel-proxy/src/repoPaths';
import { findKernelPython } from '../../kernel-proxy/src/pythonLocator';
import { tempDir } from './helpers';

describe('jupyter: remote-gpu kernelspec', function () {
  this.timeout(60000);   // each interpreter probe imports ipykernel: seconds on a loaded machine
  let dir: string;
  beforeEach(() => { dir = tempDir('spec'); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('runs our launcher with the connection file and never carries a token', () => {
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, 'sekrit-token-value', { mode: 0o600 });
    const spec = buildKernelSpec({ pool: 'tls://gpu.example:7447', gpu: 'A100-40GB', tokenFile, python: '/usr/bin/python3' });
    assert.equal(spec.argv[0], process.execPath);
    assert.equal(spec.argv[1], launcherPath());
    assert.deepEqual(spec.argv.slice(2, 4), ['-f', '{connection_file}']);
    assert.deepEqual(spec.argv.slice(spec.argv.indexOf('--pool'), spec.argv.indexOf('--pool') + 2), ['--pool', 'tls://gpu.example:7447']);
    assert.equal(spec.argv[spec.argv.indexOf('--token-file') + 1], tokenFile);
    assert.equal(spec.language, 'python');
    assert.equal(spec.interrupt_mode, 'signal');
    assert.equal(spec.display_name, 'Remote GPU A100-40GB (Python 3)');
    assert.ok(!JSON.stringify(spec).includes('sekrit'), 'token value leaked into kernel.json');
    assert.equal(buildKernelSpec({ python: '/usr/bin/python3' }).display_name, 'Remote GPU (Python 3)');
  });

  it('finds an interpreter that has ipykernel (not pyenv first on PATH)', () => {
    const py = findKernelPython();
    assert.ok(path.isAbsolute(py), py);
    assert.equal(findKernelPython(['/nonexistent/python3', py]), py);
  });

  it('says which interpreters it tried and what to install when none has ipykernel', () => {
    assert.throws(() => findKernelPython(['/nonexistent/python3', '/bin/false']), (e: unknown) =>
      e instanceof PythonNotFoundError && e.code === 'RGPU_ERR_NO_IPYKERNEL' &&
      e.message.includes('/nonexistent/python3, /bin/false') && e.message.includes('apt-get install python3-ipykernel'));
  });

  it('install --prefix, list through JUPYTER_PATH, uninstall', async () => {
    const specDir = installKernelSpec({ prefix: dir, gpu: 'T4' });
    assert.equal(specDir, path.join(dir, 'share', 'jupyter', 'kernels', 'remote-gpu'));
    const json = JSON.parse(fs.readFileSync(path.join(specDir, 'kernel.json'), 'utf8'));
    assert.equal(json.metadata.remoteGpu.gpuType, 'T4');
    assert.ok(fs.existsSync(path.join(specDir, 'logo-64x64.png')), 'logo copied');
    const listed = listKernelSpecs({ ...process.env, JUPYTER_PATH: path.join(dir, 'share', 'jupyter') });
    const mine = listed.find((k) => k.name === 'remote-gpu');
    assert.ok(mine && mine.remoteGpu && mine.dir === specDir, JSON.stringify(listed));
    assert.equal(uninstallKernelSpec({ prefix: dir }), specDir);
    assert.ok(!fs.existsSync(specDir));
    assert.equal(uninstallKernelSpec({ prefix: dir }), undefined);
  });

  it('rgpu kernel: exit codes for good and bad usage', async () => {
    const err = process.stderr.write;
    const out = process.stdout.write;
    let text = '';
    process.stderr.write = process.stdout.write = ((s: string) => { text += s; return true; }) as typeof process.stdout.write;
    try {
      assert.equal(await runKernelCommand(['install', '--prefix', dir, '--name', 'rg2']), 0);
      assert.ok(fs.existsSync(path.join(dir, 'share/jupyter/kernels/rg2/kernel.json')));
      assert.equal(await runKernelCommand(['install', '--prefix', dir, '--user']), 2);
      assert.match(text, /exclusive/);
      assert.equal(await runKernelCommand(['install', '--name', '../evil', '--prefix', dir]), 2);
      assert.equal(await runKernelCommand(['install', '--gpu']), 2);
      assert.equal(await runKernelCommand(['frobnicate']), 2);
      assert.equal(await runKernelCommand(['uninstall', '--prefix', dir, '--name', 'rg2']), 0);
      assert.equal(await runKernelCommand(['uninstall', '--prefix', dir, '--name', 'rg2']), 1);
    } finally {
      process.stderr.write = err;
      process.stdout.write = out;
    }
  });

  it('--user goes to the Jupyter data dir, default to /usr/local', () => {
    assert.equal(kernelsDir({ user: true }, { HOME: '/h', XDG_DATA_HOME: '/x' }), '/x/jupyter/kernels');
    assert.equal(kernelsDir({ user: true }, { JUPYTER_DATA_DIR: '/j' }), '/j/kernels');
    assert.equal(kernelsDir({}), '/usr/local/share/jupyter/kernels');
  });
});

describe('jupyter: kernel launcher arguments and environment', () => {
  it('parses its argv and rejects the unknown', () => {
    const o = parseLauncherArgs(['-f', '/tmp/c.json', '--socket', '/s/p.sock', '--gpu', 'T4']);
    assert.equal(o.connectionFile, '/tmp/c.json');
    assert.equal(o.socket, '/s/p.sock');
    assert.equal(o.gpu, 'T4');
    assert.throws(() => parseLauncherArgs(['--gpu', 'T4']), KernelUsageError);
    assert.throws(() => parseLauncherArgs(['-f', 'x', '--bogus']), KernelUsageError);
    assert.throws(() => parseLauncherArgs(['-f']), KernelUsageError);
  });

  it('puts the intercept first, points at the proxy and scrubs credentials', () => {
    const env = kernelEnv({ LD_LIBRARY_PATH: '/usr/lib/x', RGPU_TOKEN_FILE: '/t', REMOTE_GPU_TOKEN_FILE: '/t', REMOTE_GPU_SERVER: 'tcp://h:1', PATH: '/bin' }, '/s/p.sock');
    assert.equal(env.LD_LIBRARY_PATH, `${interceptDir()}:/usr/lib/x`);
    assert.equal(env.PYTHONPATH, pythonExtensionDir());
    assert.equal(env.REMOTE_GPU_PROXY, '/s/p.sock');
    for (const k of ['RGPU_TOKEN_FILE', 'REMOTE_GPU_TOKEN_FILE', 'REMOTE_GPU_SERVER']) assert.equal(env[k], undefined, k);
    assert.equal(env.PATH, `${shimDir()}:/bin`, 'nvidia-smi first on PATH');
    assert.equal(env.REMOTE_GPU_NODE, process.execPath);
  });
});
