import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Op, PROTOCOL_VERSION } from '../../../gpu-runtime/protocol/generated/ops';
import { CUresult } from '../../../gpu-runtime/protocol/generated/cuResult';
import { startServer } from '../../../gpu-runtime/server/src/main';
import { ServerError } from '../../../gpu-runtime/server/src/errors';
import { FakeBackend } from '../../helpers/fakeBackend';
import { startFakeServer, type Fixture } from '../../helpers/serverFixture';
import { ReplyError, TestClient } from '../../helpers/testClient';

async function refused(p: Promise<unknown>, code: number, text?: RegExp): Promise<ReplyError> {
  const e = await p.then(
    () => assert.fail('expected the server to refuse'),
    (x: unknown) => x,
  );
  assert.ok(e instanceof ReplyError, String(e));
  assert.equal(e.result, code, e.message);
  if (text) assert.match(e.serverMessage, text);
  return e;
}

describe('server handshake', () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFakeServer(undefined, { token: 's3cret', memQuota: 8 * 2 ** 20 });
  });
  after(() => fx.server.close());

  it('leases a device and answers with the HELLO reply of contracts.md', async () => {
    const c = await TestClient.session(fx.port, { token: 's3cret', gpuType: 'A100-40GB' });
    const h = c.hello!;
    assert.match(h.session, /^s-\d+$/);
    assert.equal(h.device.type, 'A100-40GB');
    assert.equal(h.device.name, 'Fake A100-40GB');
    assert.equal(h.device.totalMem, 64 * 2 ** 20);
    assert.equal(h.device.uuid.length, 16);
    assert.equal(h.device.attributes.length, 140);
    assert.ok(h.va.size >= 8 * 2 ** 20 && h.va.base > 0);
    assert.deepEqual(h.quota, { memory: 8 * 2 ** 20, handles: 16384, queuedOps: 4096 });
    assert.equal(h.server, 'remote-gpu/0.1.0');
    c.close();
  });

  it('gives the default (first) type for an empty gpuType', async () => {
    const c = await TestClient.session(fx.port, { token: 's3cret' });
    assert.equal(c.hello!.device.type, 'T4');
    c.close();
  });

  it('refuses another protocol version with NOT_SUPPORTED and closes', async () => {
    const c = await TestClient.connect({ port: fx.port });
    await refused(c.sayHello({ version: PROTOCOL_VERSION + 1, token: 's3cret' }), CUresult.CUDA_ERROR_NOT_SUPPORTED, /version/);
    await c.closed;
  });

  it('refuses a bad token with NOT_PERMITTED and closes', async () => {
    const c = await TestClient.connect({ port: fx.port });
    await refused(c.sayHello({ token: 'wrong' }), CUresult.CUDA_ERROR_NOT_PERMITTED, /token/);
    await c.closed;
  });

  it('refuses an unknown GPU type with NO_DEVICE, naming the types, and closes', async () => {
    const c = await TestClient.connect({ port: fx.port });
    await refused(c.sayHello({ token: 's3cret', gpuType: 'H100' }), CUresult.CUDA_ERROR_NO_DEVICE, /H100.*T4, A100-40GB/);
    await c.closed;
  });

  it('answers ops before HELLO with NOT_INITIALIZED and stays open', async () => {
    const c = await TestClient.connect({ port: fx.port });
    await refused(c.request(Op.CTX_SYNC), CUresult.CUDA_ERROR_NOT_INITIALIZED, /HELLO/);
    assert.ok((await c.ping()) > 0);
    await c.sayHello({ token: 's3cret' });
    await c.sync();
    c.close();
  });

  it('serves INVENTORY and PING on a control connection, nothing else', async () => {
    const c = await TestClient.connect({ port: fx.port });
    const r = await c.sayHello({ token: 's3cret', purpose: 'control' });
    assert.deepEqual((r as unknown as { types: string[] }).types, ['T4', 'A100-40GB']);
    const inv = await c.inventory();
    assert.deepEqual(
      inv.types.map((t: { type: string; total: number }) => [t.type, t.total]),
      [['T4', 2], ['A100-40GB', 1]],
    );
    await refused(c.request(Op.CTX_SYNC), CUresult.CUDA_ERROR_NOT_PERMITTED);
    c.close();
  });

  it('refuses to listen beyond loopback without a token', async () => {
    await assert.rejects(startServer({ host: '0.0.0.0', port: 0, backends: [new FakeBackend()] }), (e: unknown) => e instanceof ServerError && e.code === 'RGPU_ERR_INSECURE_LISTEN' && /token/.test(e.message));
  });

  it('speaks TLS when given a certificate', async function () {
    const dir = mkdtempSync(join(tmpdir(), 'rgpu-tls-'));
    try {
      try {
        execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
      } catch {
        this.skip();
      }
      const server = await startServer({ port: 0, backends: [new FakeBackend()], tls: { cert: join(dir, 'c.pem'), key: join(dir, 'k.pem') } });
      try {
        const c = await TestClient.connect({ port: server.address.port, tls: { rejectUnauthorized: false } });
        const hello = await c.sayHello({});
        assert.equal(hello.lane, undefined, 'a TLS server offers no data lane: it would carry copies in the clear');
        const a = c.alloc(16);
        c.htod(a, Buffer.from('0123456789abcdef'));
        assert.equal((await c.dtoh(a, 16)).toString(), '0123456789abcdef');
        c.close();
      } finally {
        await server.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
