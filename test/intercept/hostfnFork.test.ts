// Host-function helper thread lifetime (started on first use, not inherited across fork, joined at exit),
// against the server with its FakeBackend: no GPU, no nvcc.
import * as assert from 'node:assert/strict';
import { startFakeServer, type Fixture } from '../helpers/serverFixture';
import { ensureIntercept, expectOk, gcc, interceptEnv, INTERCEPT_DIR, run } from '../cuda/programs';

describe('intercept: host functions, threads and fork (fake server)', function () {
  let fx: Fixture;
  let bin: string;

  before(async function () {
    ensureIntercept();
    bin = await gcc('test/intercept/hostfn_fork.c', [`-L${INTERCEPT_DIR}`, '-lcuda', '-lpthread']);
    fx = await startFakeServer([{ type: 'T4', count: 2, totalMem: 256 * 2 ** 20 }]); // the child leases its own
  });

  after(async () => {
    await fx?.server.close();
  });

  it('one helper thread from the first host function; a destroyed stream still runs its function; a forked child starts its own', async () => {
    const r = await run(bin, [], { env: interceptEnv(`tcp://127.0.0.1:${fx.port}`) });
    expectOk(r, 'hostfn_fork');
    assert.equal(r.stdout, 'hostfn-fork ok\n');
    assert.equal(r.stderr, '');
  });
});
