// An unmodified nvcc program using CUDA arrays, texture objects and surface objects (cudaMallocArray,
// cudaMalloc3DArray, cudaMemcpy2DToArray, cudaMemcpy3D, tex1Dfetch/tex2D/tex3D, surf2Dread/surf2Dwrite) on
// the emulated GPU through the intercept and the server. The program compares every fetch with the value
// it computes on the host and exits non-zero on a mismatch.
import * as assert from 'node:assert/strict';
import { startServer, type RunningServer } from '../../gpu-runtime/server/src/main';
import { startFakeServer, type Fixture } from '../helpers/serverFixture';
import { ensureIntercept, expectOk, interceptEnv, nvcc, run } from './programs';

describe('cuda textures and surfaces on the emulated GPU through the intercept', function () {
  let server: RunningServer;
  let url: string;
  let bin: string;

  before(async function () {
    this.timeout(300000);
    ensureIntercept();
    server = await startServer({ port: 0, devices: 'emulated:T4x1' });
    url = `tcp://127.0.0.1:${server.address.port}`;
    bin = await nvcc('textures.cu');
  });

  let fake: Fixture;
  after(async () => {
    await server?.close();
    await fake?.server.close();
  });

  it('2D linear/normalized/clamp/wrap, tex1Dfetch, 3D, surface write/read match the host; refused features fail cleanly', async function () {
    this.timeout(120000);
    const r = await run(bin, [], { env: interceptEnv(url), timeoutMs: 100000 });
    expectOk(r, 'textures');
    assert.match(r.stdout, /^tex2d ok .*\ntex1dfetch ok 159\ntex3d ok .*\nsurface ok .*\npitch2d layered ok .*\nerrors ok\nreset ok\ntextures ok\n$/);
    assert.equal(r.stderr, '');
  });

  it('a device without texture objects refuses their creation synchronously (arrays still work)', async function () {
    this.timeout(60000);
    fake = await startFakeServer([{ type: 'T4', count: 1 }]);
    const r = await run(bin, ['refuse'], { env: interceptEnv(`tcp://127.0.0.1:${fake.port}`), timeoutMs: 50000 });
    expectOk(r, 'textures refuse');
    assert.equal(r.stdout, 'refused cudaErrorNotSupported cudaErrorNotSupported\n');
  });
});
