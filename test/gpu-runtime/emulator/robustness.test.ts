// Untrusted PTX must never crash the server: every malformed or mutated module is either loaded or refused
// with a CudaError (INVALID_PTX / NOT_SUPPORTED), never another exception.

import { strict as assert } from 'node:assert';
import { CudaError } from '../../../gpu-runtime/server/src/backend';
import { Session } from './harness';

const BASE = `
.version 8.0
.target sm_75
.address_size 64
.global .align 4 .b8 tab[8] = {1, 2, 3, 4, 5, 6, 7, 8};
.visible .entry k(.param .u64 out, .param .u32 n)
{
  .reg .pred %p<3>; .reg .b32 %r<9>; .reg .b64 %rd<9>; .reg .f32 %f<4>;
  .shared .align 4 .b8 sh[128];
  ld.param.u64 %rd1, [out];
  ld.param.u32 %r1, [n];
  mov.u32 %r2, %tid.x;
  setp.ge.u32 %p1, %r2, %r1;
  @%p1 bra $L__done;
  shl.b32 %r3, %r2, 2;
  mov.u32 %r4, sh;
  add.s32 %r5, %r4, %r3;
  st.shared.u32 [%r5], %r2;
  bar.sync 0;
  ld.shared.u32 %r6, [%r5];
  shfl.sync.bfly.b32 %r7|%p2, %r6, 1, 31, -1;
  cvt.rn.f32.u32 %f1, %r7;
  mul.wide.u32 %rd2, %r2, 4;
  add.s64 %rd3, %rd1, %rd2;
  st.global.f32 [%rd3], %f1;
$L__done:
  ret;
}
`;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
}

describe('emulator: hostile PTX', () => {
  it('loads the unmutated module and runs it', async () => {
    const s = new Session();
    const m = s.load(BASE);
    const out = s.alloc(32 * 4);
    s.launch(m, 'k', 1, 32, [out, 32]);
    const got = await s.download(out, new Float32Array(32));
    assert.deepEqual(Array.from(got), Array.from({ length: 32 }, (_, t) => t ^ 1));
  });

  it('refuses or runs 200 random mutations, failing with CudaErrors only', () => {
    const r = rng(12345);
    const tokens = BASE.split(/(\s+|[,;\[\]{}()|])/);
    const junk = ['%r99', '[', ']', '{', '}', ';', '.u64', '.f16x2', '0fFFFFFFFF', '-', '@', '!', 'bra', '.reg', '$L__x', '(', '0x', ':'];
    let loaded = 0;
    for (let i = 0; i < 200; i++) {
      const t = tokens.slice();
      for (let k = 0; k < 1 + Math.floor(r() * 3); k++) {
        const at = Math.floor(r() * t.length);
        const what = r();
        if (what < 0.4) t[at] = junk[Math.floor(r() * junk.length)];
        else if (what < 0.7) t.splice(at, 1);
        else t.splice(at, 0, t[Math.floor(r() * t.length)]);
      }
      const s = new Session({ watchdogMs: 100 });
      try {
        const m = s.load(t.join(''));
        loaded++;
        // Whatever loads must also run (or fault) without an internal exception.
        if (m.info.kernels.length && m.info.kernels[0].paramSize === 12) s.launch(m, m.info.kernels[0].name, 1, 32, [s.alloc(128), 32]);
      } catch (e) {
        if (!(e instanceof CudaError)) assert.fail(`mutation ${i} threw ${(e as Error)?.name}: ${(e as Error)?.message}\n${t.join('')}`);
      }
      s.ctx.destroy();
    }
    assert.ok(loaded < 200);
  });
});
