import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatSmi } from '../../gpu-runtime/cli/src/smiTable';
import { KernelProxy } from '../../kernel-proxy/src/proxy';
import { startServer } from '../../gpu-runtime/server/src/main';
import { FakePool, INVENTORY } from '../kernel-proxy/fakePool';
import { runCli } from './runCli';

const env = (): NodeJS.ProcessEnv => {
  const e = { ...process.env };
  delete e.RGPU_POOL;
  return e;
};

describe('rgpu smi', () => {
  let pool: FakePool;
  before(async () => (pool = await FakePool.start()));
  after(async () => pool.close());

  it('formats GPUs, memory use, sessions and the per-type queue as a table', () => {
    const out = formatSmi(INVENTORY, 'tcp://pool:7447');
    const lines = out.split('\n');
    assert.match(lines[1], /rgpu smi\s+pool tcp:\/\/pool:7447/);
    const rows = lines.filter((l) => /^\|\s+\d+ \|/.test(l));
    assert.equal(rows.length, 2);
    assert.match(rows[0], /\|\s+0 \| Tesla T4\s+\| T4\s+\|\s+300MiB \/ 15360MiB \| s-1\s+\|/);
    assert.match(rows[1], /\|\s+1 \| Tesla T4\s+\| T4\s+\|\s+0MiB \/ 15360MiB \| -\s+\|/);
    assert.match(out, /^T4\s+2\s+1\s+1\s+0$/m);
    assert.match(out, /Sessions: 1 attached, 0 queued/);
    const widths = new Set(lines.filter((l) => l.startsWith('|') || l.startsWith('+')).map((l) => l.length));
    assert.equal(widths.size, 1, 'every table line has the same width');
  });

  it('says so when the pool has no GPUs', () => {
    assert.match(formatSmi({ types: [], devices: [], sessions: 0, queued: 0 }, 'x'), /no GPUs in this pool/);
  });

  it('asks the pool given by --pool', async () => {
    const r = await runCli(['smi', '--pool', pool.url], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, formatSmi(INVENTORY, pool.url));
    const j = await runCli(['smi', '--pool', pool.url, '--json'], { env: env() });
    assert.deepEqual(JSON.parse(j.stdout), INVENTORY);
  });

  it('asks a running kernel-proxy when no pool is named', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-smi-'));
    const proxy = await KernelProxy.start({ socket: path.join(dir, 'proxy.sock'), pool: pool.url, log: () => {} });
    try {
      const r = await runCli(['smi', '--socket', proxy.socketPath, '--json'], { env: env() });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), INVENTORY);
    } finally {
      await proxy.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finds a VS Code window\'s proxy (vscode-PID.sock next to the per-user default) when no socket is named', async () => {
    const xdg = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-smi-xdg-'));
    fs.mkdirSync(path.join(xdg, 'remote-gpu'), { mode: 0o700 });
    const proxy = await KernelProxy.start({ socket: path.join(xdg, 'remote-gpu', 'vscode-4242.sock'), pool: pool.url, log: () => {} });
    try {
      const r = await runCli(['smi'], { env: { ...env(), XDG_RUNTIME_DIR: xdg } });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, formatSmi(INVENTORY, `${pool.url} (via ${proxy.socketPath})`));
    } finally {
      await proxy.stop();
      fs.rmSync(xdg, { recursive: true, force: true });
    }
  });

  it('reads a pool on a Unix socket, and names a proxy\'s embedded server as such', async function () {
    this.timeout(60000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-smi-unix-'));
    const local = await startServer({ socketPath: path.join(dir, 'pool.sock'), devices: 'emulated:T4' });
    const proxy = await KernelProxy.start({ socket: path.join(dir, 'p', 'proxy.sock'), embeddedDevices: 'emulated:A100-40GB', awaitPool: true, pingIntervalMs: 0, log: () => {} });
    try {
      const direct = await runCli(['smi', '--pool', `unix:${local.socketPath}`], { env: env() });
      assert.equal(direct.code, 0, direct.stderr);
      assert.match(direct.stdout, new RegExp(`pool unix:${local.socketPath}`));
      assert.match(direct.stdout, /Tesla T4/);
      const viaProxy = await runCli(['smi', '--socket', proxy.socketPath], { env: env() });
      assert.equal(viaProxy.code, 0, viaProxy.stderr);
      assert.match(viaProxy.stdout, /pool embedded server \(via /);
      assert.match(viaProxy.stdout, /A100/);
    } finally {
      await proxy.stop();
      await local.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails with a clear message when the pool is unreachable', async () => {
    const r = await runCli(['smi', '--pool', 'tcp://127.0.0.1:1'], { env: env() });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot reach the GPU pool at tcp:\/\/127\.0\.0\.1:1/);
    assert.equal(r.stdout, '');
  });
});
