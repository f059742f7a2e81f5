// The intercept library against the real server with its FakeBackend: driver-API scenarios from
// driver_fake.c (no GPU, no nvcc), the Unix-socket path, and what happens when the server is absent or dies.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { startFakeServer, type Fixture } from '../helpers/serverFixture';
import { ensureIntercept, expectOk, gcc, interceptEnv, INTERCEPT_DIR, run } from '../cuda/programs';

describe('intercept: driver API against the fake server', function () {
  let fx: Fixture;
  let bin: string;
  let url: string;

  before(async function () {
    ensureIntercept();
    bin = await gcc('test/intercept/driver_fake.c', [`-L${INTERCEPT_DIR}`, '-lcuda', '-lpthread', '-ldl']);
    // Two devices: a forked child leases its own while the parent keeps the first.
    fx = await startFakeServer([{ type: 'T4', count: 2, totalMem: 256 * 2 ** 20 }]);
    url = `tcp://127.0.0.1:${fx.port}`;
  });

  after(async () => {
    await fx?.server.close();
  });

  // 'large' (frames split at 64 MiB) runs in test/cuda with 256 MiB; here it would only repeat it slowly.
  for (const scenario of ['device', 'memory', 'streams', 'threads', 'fork', 'procaddr', 'overlap']) {
    it(`${scenario}`, async () => {
      const r = await run(bin, [scenario], { env: interceptEnv(url) });
      expectOk(r, scenario);
      assert.match(r.stdout, scenario === 'device' ? /name=Fake T4 cc=7 bus=00000000:0[12]:00.0 total=268435456/ : new RegExp(`${scenario} ok`));
      assert.equal(r.stderr, '', 'nothing on stderr without REMOTE_GPU_TRACE');
    });
  }

  it('device printf reaches stdout at the sync point, and a fault is sticky', async () => {
    const r = await run(bin, ['sticky'], { env: interceptEnv(url) });
    expectOk(r, 'sticky');
    assert.equal(r.stdout, 'before\nhello 5\nhello 5\nafter\nsticky ok\n');
  });

  it('traces unimplemented entry points to stderr with REMOTE_GPU_TRACE=1', async () => {
    const r = await run(bin, ['procaddr'], { env: interceptEnv(url, { REMOTE_GPU_TRACE: '1' }) });
    expectOk(r, 'procaddr');
    assert.match(r.stderr, /unimplemented: cuGraphAddEmptyNode/);
    assert.doesNotMatch(r.stdout, /rgpu/);
  });

  /** A Unix-socket relay to the server that counts connections and the chunks the client writes. */
  async function withRelay(fn: (sock: string, stats: { connections: number; chunks: number; bytes: number }) => Promise<void>): Promise<void> {
    const sock = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-sock-')), 'proxy.sock');
    const stats = { connections: 0, chunks: 0, bytes: 0 };
    const relay = net.createServer((c) => {
      stats.connections++;
      const up = net.connect(fx.port, '127.0.0.1');
      c.on('data', (d) => {
        stats.chunks++;
        stats.bytes += d.length;
      });
      c.pipe(up).pipe(c);
      c.on('error', () => up.destroy());
      up.on('error', () => c.destroy());
    });
    await new Promise<void>((r) => relay.listen(sock, r));
    try {
      await fn(sock, stats);
    } finally {
      relay.close();
    }
  }

  it('connects through a Unix socket ($REMOTE_GPU_PROXY)', async () => {
    await withRelay(async (sock, stats) => {
      const r = await run(bin, ['streams'], { env: { ...interceptEnv('tcp://127.0.0.1:1'), REMOTE_GPU_PROXY: sock } });
      expectOk(r, 'streams via unix socket');
      assert.equal(stats.connections, 1);
    });
  });

  it('sends a large module image once: a second process loads it from the server cache by hash', async () => {
    for (const expectImage of [true, false]) {
      await withRelay(async (sock, stats) => {
        const r = await run(bin, ['bigmodule'], { env: { ...interceptEnv('tcp://127.0.0.1:1'), REMOTE_GPU_PROXY: sock } });
        expectOk(r, 'bigmodule');
        if (expectImage) assert.ok(stats.bytes > 300 * 1024, `first load sent only ${stats.bytes} bytes`);
        else assert.ok(stats.bytes < 16 * 1024, `cached load still sent ${stats.bytes} bytes`);
      });
    }
  });

  it('batches fire-and-forget frames: 20000 launches leave in a few large writes', async () => {
    await withRelay(async (sock, stats) => {
      const r = await run(bin, ['bench', '20000'], { env: { ...interceptEnv('tcp://127.0.0.1:1'), REMOTE_GPU_PROXY: sock } });
      expectOk(r, 'bench');
      assert.match(r.stdout, /launch_enqueue_us=[\d.]+ launches_per_s=\d+ sync_rtt_us=[\d.]+ dtoh4_us=[\d.]+/);
      // 20000 launch frames of 76 bytes, plus 1000 small synchronous requests that each need their own write
      assert.ok(stats.bytes > 20000 * 76, `only ${stats.bytes} bytes relayed`);
      assert.ok(stats.chunks < 1000 + 200, `${stats.chunks} chunks: launches were not batched`);
    });
  });
});

describe('intercept: session options', function () {
  let bin: string;
  let fx: Fixture;
  let tokenFile: string;

  before(async function () {
    ensureIntercept();
    bin = await gcc('test/intercept/driver_fake.c', [`-L${INTERCEPT_DIR}`, '-lcuda', '-lpthread', '-ldl']);
    fx = await startFakeServer([{ type: 'T4', count: 1 }, { type: 'A100-40GB', count: 1 }], { token: 's3cret-token' });
    tokenFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-token-')), 'token');
    fs.writeFileSync(tokenFile, 's3cret-token\n', { mode: 0o600 });
  });

  after(async () => {
    await fx?.server.close();
  });

  it('sends the token from $REMOTE_GPU_TOKEN_FILE and the type from $REMOTE_GPU_GPU', async () => {
    const env = interceptEnv(`tcp://127.0.0.1:${fx.port}`, { REMOTE_GPU_TOKEN_FILE: tokenFile, REMOTE_GPU_GPU: 'A100-40GB' });
    const r = await run(bin, ['device'], { env });
    expectOk(r, 'device with token');
    assert.match(r.stdout, /name=Fake A100-40GB /);
  });

  it('a wrong token makes cuInit fail with the server\'s CUDA_ERROR_NOT_PERMITTED', async () => {
    const bad = tokenFile + '.bad';
    fs.writeFileSync(bad, 'wrong\n');
    const r = await run(bin, ['noserver'], { env: interceptEnv(`tcp://127.0.0.1:${fx.port}`, { REMOTE_GPU_TOKEN_FILE: bad }) });
    expectOk(r, 'bad token');
    assert.match(r.stdout, /cuInit: 800/);
  });
});

describe('intercept: the library itself', function () {
  before(() => ensureIntercept());

  it('needs only libc, libdl and libpthread, and exports only cu* entry points', () => {
    const lib = path.join(INTERCEPT_DIR, 'libcuda.so.1');
    const needed = [...execFileSync('readelf', ['-d', lib], { encoding: 'utf8' }).matchAll(/\(NEEDED\)\s+Shared library: \[(.+?)\]/g)].map((m) => m[1]);
    // ld-linux comes with TLS (__tls_get_addr); it is part of glibc like libc itself.
    for (const n of needed) assert.match(n, /^(lib(c|dl|pthread)\.so\.\d+|ld-linux-x86-64\.so\.2)$/);
    assert.match(execFileSync('readelf', ['-d', lib], { encoding: 'utf8' }), /SONAME.*\[libcuda\.so\.1\]/);
    const syms = execFileSync('nm', ['-D', '--defined-only', lib], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => l.split(' ').pop()!);
    assert.ok(syms.length > 500, `${syms.length} exported symbols`);
    assert.deepEqual(syms.filter((s) => !s.startsWith('cu')), []);
    for (const s of ['cuGetProcAddress_v2', 'cuGetExportTable', 'cuInit', 'cuLaunchKernel', 'cuLaunchKernel_ptsz', 'cuMemAlloc_v2', 'cuLibraryLoadData'])
      assert.ok(syms.includes(s), s);
    assert.ok(fs.lstatSync(path.join(INTERCEPT_DIR, 'libcuda.so')).isSymbolicLink() || fs.existsSync(path.join(INTERCEPT_DIR, 'libcuda.so')));
  });
});

describe('intercept: transport failures', function () {
  before(async function () {
    ensureIntercept();
  });

  it('cuInit fails promptly with CUDA_ERROR_NO_DEVICE when nothing listens', async () => {
    const bin = await gcc('test/intercept/driver_fake.c', [`-L${INTERCEPT_DIR}`, '-lcuda', '-lpthread', '-ldl']);
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const t0 = Date.now();
    const r = await run(bin, ['noserver'], { env: interceptEnv(`tcp://127.0.0.1:${port}`), timeoutMs: 20000 });
    expectOk(r, 'noserver');
    assert.match(r.stdout, /cuInit: 100/);
    assert.ok(Date.now() - t0 < 10000);
  });

  it('a later cuInit connects once the server is there', async () => {
    const bin = await gcc('test/intercept/driver_fake.c', [`-L${INTERCEPT_DIR}`, '-lcuda', '-lpthread', '-ldl']);
    const fx = await startFakeServer([{ type: 'T4', count: 1 }]);
    try {
      const r = await run(bin, ['noserver'], {
        env: interceptEnv('tcp://127.0.0.1:1'),
        timeoutMs: 20000,
        onSpawn: (child) => child.stdin!.end(`tcp://127.0.0.1:${fx.port}\n`),
      });
      expectOk(r, 'noserver then retry');
      assert.match(r.stdout, /cuInit: 100\nretry: 0 count=1/);
    } finally {
      await fx.server.close();
    }
  });

  it('calls fail with CUDA_ERROR_DEVICE_UNAVAILABLE after the server goes away, and the program exits normally', async () => {
    const bin = await gcc('test/intercept/driver_fake.c', [`-L${INTERCEPT_DIR}`, '-lcuda', '-lpthread', '-ldl']);
    const fx = await startFakeServer([{ type: 'T4', count: 1 }]);
    let closing: Promise<void> | undefined;
    const r = await run(bin, ['serverdies'], {
      env: interceptEnv(`tcp://127.0.0.1:${fx.port}`),
      timeoutMs: 20000,
      onSpawn: (child) => {
        child.stdout!.on('data', (d: Buffer) => {
          if (!closing && d.toString().includes('ready')) {
            closing = fx.server.close().then(() => {
              child.stdin!.end('go\n');
            });
          }
        });
      },
    });
    await closing;
    expectOk(r, 'serverdies');
    assert.match(r.stdout, /after loss: 46\nagain: 46/);
  });
});
