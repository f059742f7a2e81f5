import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PoolUnavailableError } from '../../kernel-proxy/src/errors';
import { connectPool, parsePoolUrl } from '../../kernel-proxy/src/poolUrl';
import { FakePool, INVENTORY } from './fakePool';
import { runCli } from '../cli/runCli';

describe('kernel-proxy pool over TLS', () => {
  let dir: string;
  let pool: FakePool;

  before(async function () {
    this.timeout(30000);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' });
    pool = await FakePool.start(0, { key: fs.readFileSync(path.join(dir, 'k.pem')), cert: fs.readFileSync(path.join(dir, 'c.pem')) });
  });

  after(async () => {
    await pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('verifies the pool certificate: an untrusted one is refused', async () => {
    await assert.rejects(connectPool(parsePoolUrl(pool.url), 3000), (e: unknown) => e instanceof PoolUnavailableError && /self[- ]signed/i.test(e.message));
  });

  it('speaks TLS to a pool whose certificate is trusted (NODE_EXTRA_CA_CERTS)', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_EXTRA_CA_CERTS: path.join(dir, 'c.pem') };
    delete env.RGPU_POOL;
    const r = await runCli(['smi', '--pool', pool.url, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), INVENTORY);
  });
});
