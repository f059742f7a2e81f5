import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { get } from 'node:http';
import { join } from 'node:path';
import { parseServeArgs, parseBytes, ServeHelpRequested } from '../../../gpu-runtime/server/src/args';
import { parseDeviceSpec } from '../../../gpu-runtime/server/src/backends';
import { buildDispatchTable } from '../../../gpu-runtime/server/src/dispatch';
import { ServerError } from '../../../gpu-runtime/server/src/errors';
import { OPS } from '../../../gpu-runtime/protocol/generated/ops';
import { startFakeServer } from '../../helpers/serverFixture';
import { TestClient } from '../../helpers/testClient';

function fetchText(port: number, path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    }).on('error', reject);
  });
}

describe('rgpu serve options', () => {
  it('parses the flags with the documented defaults', () => {
    assert.deepEqual(parseServeArgs([]), { host: '127.0.0.1', port: 7447, devices: 'emulated:T4x2,emulated:A100-40GB', token: undefined, tlsCert: undefined, tlsKey: undefined, mode: 'exclusive', memQuota: undefined, metrics: undefined, maxConnections: undefined, maxConnectionsPerAddress: undefined, cudaInProcess: false, emuWorkers: undefined });
    const a = parseServeArgs(['--listen', '0.0.0.0:9000', '--token', 't', '--shared', '--mem-quota', '2G', '--metrics', ':9100', '--devices', 'cuda']);
    assert.deepEqual([a.host, a.port, a.token, a.mode, a.memQuota, a.metrics, a.devices], ['0.0.0.0', 9000, 't', 'shared', 2 ** 31, { host: '127.0.0.1', port: 9100 }, 'cuda']);
    assert.equal(parseServeArgs(['--listen', '[::1]:7']).host, '::1');
    assert.equal(parseServeArgs(['--listen', 'unix:/run/x/pool.sock']).socketPath, '/run/x/pool.sock');
    assert.equal(parseServeArgs(['--emu-workers', '2']).emuWorkers, 2);
    assert.equal(parseServeArgs(['--emu-workers', '0']).emuWorkers, 0);
    assert.equal(parseBytes('1.5k', 'x'), 1536);
    assert.throws(() => parseServeArgs(['--help']), ServeHelpRequested);
    for (const bad of [['--listen', 'nope'], ['--listen', 'unix:relative.sock'], ['--exclusive', '--shared'], ['--tls-cert', 'c'], ['--bogus'], ['--mem-quota', 'lots'], ['--token', 'a', '--token-file', 'f'], ['--emu-workers', '-1'], ['--emu-workers', 'two']]) {
      assert.throws(() => parseServeArgs(bad), (e: unknown) => e instanceof ServerError && e.code === 'RGPU_ERR_BAD_ARGS', bad.join(' '));
    }
  });

  it('parses device specs', () => {
    assert.deepEqual(parseDeviceSpec('emulated:T4x2,emulated:A100-40GB,emulated:T4'), { cuda: false, emulated: [{ type: 'T4', count: 3 }, { type: 'A100-40GB', count: 1 }] });
    assert.deepEqual(parseDeviceSpec('cuda'), { cuda: true, emulated: [] });
    for (const bad of ['', 'gpu', 'emulated:', 'emulated:T4x0', 'emulated:a b']) assert.throws(() => parseDeviceSpec(bad), ServerError, bad);
  });

  it('binds every op of ops.yaml that a client sends to a handler', () => {
    const table = buildDispatchTable();
    for (const d of OPS.values()) assert.equal(table.has(d.id), !d.notify && d.name !== 'HELLO', d.name);
    assert.throws(() => buildDispatchTable([{ NOT_AN_OP: () => {} }]), /NOT_AN_OP/);
  });

  it('runServe refuses a public address without a token, with a clear message and exit code 2', async function () {
    this.timeout(20000);
    const main = join(__dirname, '../../../gpu-runtime/server/src/main.js');
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const p = execFile(process.execPath, [main, '--listen', '0.0.0.0:0', '--devices', 'emulated:T4'], { timeout: 20000 }, (_e, _o, stderr) => resolve({ code: p.exitCode, stderr }));
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /refusing to listen on 0\.0\.0\.0 without a token/);
  });
});

describe('server metrics', () => {
  it('serves Prometheus metrics: sessions, queue, bytes, ops by type, device memory', async () => {
    const fx = await startFakeServer([{ type: 'T4', count: 1 }], { metrics: { host: '127.0.0.1', port: 0 } });
    try {
      const c = await TestClient.session(fx.port);
      const q = await TestClient.connect({ port: fx.port });
      q.sayHello({}).catch(() => {});
      const a = c.alloc(4096);
      c.htod(a, Buffer.alloc(4096));
      await c.dtoh(a, 4096);
      const m = await fetchText(fx.server.metricsAddress!.port, '/metrics');
      assert.equal(m.status, 200);
      assert.match(m.text, /^rgpu_sessions 1$/m);
      assert.match(m.text, /^rgpu_queue_length\{type="T4"\} 1$/m);
      assert.match(m.text, /^rgpu_ops_total\{op="MEM_ALLOC"\} 1$/m);
      assert.match(m.text, /^rgpu_ops_total\{op="MEMCPY_HTOD"\} 1$/m);
      assert.match(m.text, /^rgpu_device_memory_used_bytes\{device="0",type="T4"\} 4096$/m);
      const received = Number(/^rgpu_received_bytes_total (\d+)$/m.exec(m.text)![1]);
      const sent = Number(/^rgpu_sent_bytes_total (\d+)$/m.exec(m.text)![1]);
      assert.ok(received > 4096 && sent > 4096, `${received} / ${sent}`);
      assert.equal((await fetchText(fx.server.metricsAddress!.port, '/nope')).status, 404);
      c.close();
      q.close();
    } finally {
      await fx.server.close();
    }
  });
});
