// The zero-copy data path on the emulated backend: large MEMCPY_HTOD bulks land in device memory as they
// arrive, large MEMCPY_DTOH replies are views of device memory that hold later frames until written.
// Stream order must look exactly as if every copy had been made at its place in the stream.
import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CUresult } from '../../../gpu-runtime/server/src/backend';
import { startServer, type RunningServer } from '../../../gpu-runtime/server/src/main';
import { ReplyError, TestClient } from '../../helpers/testClient';

const MiB = 2 ** 20;
const pattern = (n: number, seed: number): Buffer => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
};

describe('server data path on the emulated backend', function () {
  this.timeout(30000);
  let server: RunningServer;
  let c: TestClient;

  before(async function () {
    if (!existsSync(join(__dirname, '../../../gpu-runtime/emulator/src/index.js'))) this.skip();
    server = await startServer({ port: 0, devices: 'emulated:T4' });
    c = await TestClient.session(server.address.port);
  });
  after(async () => {
    c?.close();
    await server?.close();
  });

  it('a read answered from device memory is not changed by the writes sent right behind it', async () => {
    const a = c.alloc(MiB);
    const p1 = pattern(MiB, 1), p2 = pattern(MiB, 2);
    // All in one tick, so they reach the server together: the second write must wait for the first reply.
    c.htod(a, p1);
    const r1 = c.dtoh(a, MiB);
    c.htod(a, p2);
    const r2 = c.dtoh(a, MiB);
    c.htod(a + 4096, pattern(512 * 1024, 3));
    const r3 = c.dtoh(a, 256 * 1024);
    const [b1, b2, b3] = await Promise.all([r1, r2, r3]);
    assert.ok(b1.equals(p1), 'first read sees the first write only');
    assert.ok(b2.equals(p2), 'second read sees the second write');
    assert.ok(b3.subarray(0, 4096).equals(p2.subarray(0, 4096)));
    assert.ok(b3.subarray(4096).equals(pattern(512 * 1024, 3).subarray(0, 256 * 1024 - 4096)));
    c.free(a);
  });

  it('a large write outside every allocation fails as before and writes nothing; the hold is released after an error reply', async () => {
    const a = c.alloc(MiB);
    c.htod(a, Buffer.alloc(MiB, 9));
    c.htod(a + MiB / 2, pattern(MiB, 4)); // runs past the end: refused, deferred
    await assert.rejects(c.dtoh(a, MiB), (e: unknown) => e instanceof ReplyError && e.result === CUresult.CUDA_ERROR_INVALID_VALUE);
    const b = await c.dtoh(a, MiB);
    assert.ok(b.every((x) => x === 9), 'the refused write left memory untouched');
    c.free(a);
    await c.sync();
  });

  it('keeps data exact across writes split over many chunks, with frames before and after in each', async () => {
    const a = c.alloc(3 * MiB);
    const parts = [pattern(MiB + 13 * 256, 5), pattern(300 * 1024, 6), pattern(700 * 1024, 7)];
    let off = 0;
    for (const p of parts) {
      c.memset(a + off, 0xee, 1, 16);
      c.htod(a + off, p);
      off += p.length;
    }
    const got = await c.dtoh(a, off);
    assert.ok(got.equals(Buffer.concat(parts)));
    c.free(a);
  });
});
