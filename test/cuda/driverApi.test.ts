// Programs that use the driver API directly: a C program that dlopens libcuda.so.1 and loads PTX, and a
// Python ctypes program (the notebook path), on the emulated T4 through the intercept.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { startServer, type RunningServer } from '../../gpu-runtime/server/src/main';
import { ensureIntercept, expectOk, gcc, interceptEnv, REPO, run } from './programs';

describe('driver-API programs on the emulated T4 through the intercept', function () {
  let server: RunningServer;
  let url: string;

  before(async function () {
    ensureIntercept();
    server = await startServer({ port: 0, devices: 'emulated:T4' });
    url = `tcp://127.0.0.1:${server.address.port}`;
  });

  after(async () => {
    await server?.close();
  });

  it('dlopen("libcuda.so.1") + PTX through cuModuleLoadData', async () => {
    const bin = await gcc('test/cuda/driver_ptx.c', ['-ldl']);
    const r = await run(bin, [], { env: interceptEnv(url) });
    expectOk(r, 'driver_ptx');
    assert.equal(r.stdout, 'saxpy ok y[100]=251\n');
  });

  it('Python ctypes', async () => {
    const r = await run('python3', [path.join(REPO, 'test/cuda/ctypes_vadd.py')], { env: interceptEnv(url) });
    expectOk(r, 'ctypes_vadd.py');
    assert.equal(r.stdout, 'ctypes ok on Tesla T4 c[4095]=16380\n');
  });
});
