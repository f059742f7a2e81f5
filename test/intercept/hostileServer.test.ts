// The intercept library against a scripted server that answers with malformed replies: the library must
// turn them into CUDA errors, never crash the program.
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { pack } from 'msgpackr';
import { encodeFrame, FrameDecoder } from '../../gpu-runtime/protocol/ts/codec';
import { Flag, Op } from '../../gpu-runtime/protocol/generated/ops';
import { ensureIntercept, expectOk, gcc, interceptEnv, INTERCEPT_DIR, run } from '../cuda/programs';

const HELLO_REPLY = {
  session: 's-hostile',
  device: { type: 'T4', name: 'Hostile T4', totalMem: 2 ** 30, uuid: Buffer.alloc(16, 7), ccMajor: 7, ccMinor: 5, attributes: [], driverVersion: 13000, pciDomain: 0, pciBus: 1, pciDevice: 0 },
  va: { base: 2 ** 40, size: 2 ** 30 },
  quota: { memory: 2 ** 30, handles: 1000, queuedOps: 1000 },
  server: 'hostile/0',
};

describe('intercept: malformed replies from a server', function () {
  let server: net.Server;
  let port = 0;

  before(async function () {
    ensureIntercept();
    let loads = 0;
    server = net.createServer((sock) => {
      const dec = new FrameDecoder();
      let heldSync: (() => void) | null = null;
      sock.on('error', () => {});
      sock.on('data', (chunk) => {
        for (const f of dec.push(chunk)) {
          const reply = (o: Parameters<typeof encodeFrame>[1]) => {
            for (const b of encodeFrame(f.op, { flags: Flag.REPLY, seq: f.seq, ...o })) sock.write(b);
          };
          if (f.op === Op.HELLO) reply({ body: pack(HELLO_REPLY) });
          // STREAM_SYNC is held until some STREAM_QUERY arrives (from another thread of the program)
          else if (f.op === Op.STREAM_SYNC) heldSync = () => reply({});
          else if (f.op === Op.STREAM_QUERY) {
            reply({});
            heldSync?.();
            heldSync = null;
          }
          else if (f.op === Op.MODULE_LOAD && loads++ === 0)
            // a parameter at a negative offset: a library that trusted it would write before its buffer
            reply({ body: pack({ kernels: [{ name: 'k', params: [[-8, 8]], paramSize: 8, attrs: {} }], globals: [] }) });
          else if (f.op === Op.MODULE_LOAD) {
            const bad = Buffer.alloc(24, 0xff); // a header claiming a 4 GiB frame
            sock.write(bad);
          }
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });

  after(() => {
    server.close();
  });

  it('lets other threads talk to the server while one waits for a reply', async () => {
    const bin = await gcc('test/intercept/driver_fake.c', [`-L${INTERCEPT_DIR}`, '-lcuda', '-lpthread', '-ldl']);
    const r = await run(bin, ['concurrent'], { env: interceptEnv(`tcp://127.0.0.1:${port}`), timeoutMs: 15000 });
    expectOk(r, 'concurrent');
    assert.equal(r.stdout, 'concurrent ok\n');
  });

  it('refuses a bad parameter layout and drops a connection that sends a bad header', async () => {
    const bin = await gcc('test/intercept/driver_fake.c', [`-L${INTERCEPT_DIR}`, '-lcuda', '-lpthread', '-ldl']);
    const r = await run(bin, ['hostile'], { env: interceptEnv(`tcp://127.0.0.1:${port}`), timeoutMs: 20000 });
    expectOk(r, 'hostile');
    assert.equal(r.stdout, 'first load: 200\nsecond load: 46\nafter: 46\n');
  });
});
