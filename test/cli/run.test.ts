import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { commandEnv, parseRunArgs, type RunArgs } from '../../gpu-runtime/cli/src/run';
import { shimDir } from '../../kernel-proxy/src/repoPaths';
import { FakePool } from '../kernel-proxy/fakePool';
import { runCli } from './runCli';

const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
  const e: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete e.RGPU_POOL;
  delete e.REMOTE_GPU_TRACE;
  return e;
};

describe('rgpu run', () => {
  let pool: FakePool;
  before(async () => (pool = await FakePool.start()));
  after(async () => pool.close());

  it('parses options before the command, with or without --', () => {
    assert.deepEqual(parseRunArgs(['--pool', 'tcp://h:1', '--gpu=T4', '--', 'python', '-c', 'x']), { pool: 'tcp://h:1', gpu: 'T4', tokenFile: undefined, embeddedDevices: undefined, command: ['python', '-c', 'x'] });
    assert.deepEqual((parseRunArgs(['ls', '-l']) as RunArgs).command, ['ls', '-l']);
    assert.equal(parseRunArgs(['--help']), 'help');
    assert.throws(() => parseRunArgs(['--pool']), /needs a value/);
    assert.throws(() => parseRunArgs(['--bogus', 'x']), /unknown option --bogus/);
    assert.throws(() => parseRunArgs(['--']), /no command/);
  });

  it('builds the environment: proxy socket, intercept first on the library path, no direct-server bypass', () => {
    const e = commandEnv('/s/proxy.sock', { LD_LIBRARY_PATH: '/a:/b', REMOTE_GPU_SERVER: 'tcp://x:1', RGPU_INTERCEPT_DIR: '/icpt', HOME: '/h' });
    assert.equal(e.REMOTE_GPU_PROXY, '/s/proxy.sock');
    assert.equal(e.LD_LIBRARY_PATH, '/icpt:/a:/b');
    assert.equal(e.REMOTE_GPU_SERVER, undefined);
    assert.equal(e.HOME, '/h');
    assert.equal(commandEnv('/s', { PATH: '/usr/bin' }).PATH, `${shimDir()}:/usr/bin`, 'nvidia-smi first on PATH');
    assert.equal(commandEnv('/s', {}).LD_LIBRARY_PATH?.endsWith(path.join('gpu-runtime', 'intercept', 'build')), true);
  });

  it('exits with the command\'s status and adds nothing to its stdout', async () => {
    const r = await runCli(['run', '--pool', pool.url, '--', 'sh', '-c', 'echo hello; exit 3'], { env: env() });
    assert.equal(r.code, 3);
    assert.equal(r.stdout, 'hello\n');
  });

  it('gives the command a live proxy socket and keeps the token out of its environment', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-runt-'));
    fs.writeFileSync(path.join(dir, 'token'), 'tok-123\n');
    try {
      const r = await runCli(['run', '--pool', pool.url, '--token-file', path.join(dir, 'token'), '--', 'sh', '-c', 'test -S "$REMOTE_GPU_PROXY" && echo "$LD_LIBRARY_PATH"; env | grep -c tok-123'], {
        env: env({ RGPU_TOKEN_FILE: '' }),
      });
      const [ldPath, tokenHits] = r.stdout.trim().split('\n');
      assert.ok(ldPath.split(':')[0].endsWith(path.join('gpu-runtime', 'intercept', 'build')), ldPath);
      assert.equal(tokenHits, '0');
      assert.equal(r.code, 1, 'grep -c found nothing');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('forwards SIGTERM to the command and exits with its status', async () => {
    const r = await runCli(['run', '--pool', pool.url, '--', 'sh', '-c', 'trap \'kill $!; exit 7\' TERM; sleep 20 >/dev/null & echo ready; wait'], {
      env: env(),
      onSpawn: (c) => {
        c.stdout!.once('data', () => c.kill('SIGTERM'));
      },
    });
    assert.equal(r.code, 7);
  });

  it('reports a command that cannot be run with status 127', async () => {
    const r = await runCli(['run', '--pool', pool.url, '--', '/nonexistent/cmd'], { env: env() });
    assert.equal(r.code, 127);
    assert.match(r.stderr, /cannot run \/nonexistent\/cmd/);
  });

  it('starts the embedded server when no pool is configured: a HELLO reaches an emulated GPU, the status comes back', async function () {
    this.timeout(60000);
    const script = `
      const net = require('net');
      const { encodeFrame, packArgs, FrameDecoder, unpackValue } = require(${JSON.stringify(path.resolve(__dirname, '..', '..', 'gpu-runtime', 'protocol', 'ts', 'codec.js'))});
      const s = net.connect(process.env.REMOTE_GPU_PROXY, () => {
        s.write(encodeFrame(1, { seq: 1, body: packArgs(1, { version: 1, token: '', gpuType: '', purpose: 'session', client: { pid: process.pid, argv0: 'probe' } }) })[0]);
      });
      const d = new FrameDecoder();
      s.on('data', (c) => { for (const f of d.push(c)) { const v = unpackValue(f.body); console.log(f.result, v.device && v.device.type); s.end(); process.exitCode = 3; } });
    `;
    const r = await runCli(['run', '--', process.execPath, '-e', script], { env: env() });
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout, '0 T4\n', 'the default type of the embedded pool');
  });
});
