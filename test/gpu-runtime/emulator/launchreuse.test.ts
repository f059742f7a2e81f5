// The scheduler keeps each kernel's launch environment, buffers and thread states across launches. These
// check that a launch still starts as if everything were fresh: zeroed shared and local memory, its own
// params, and correct thread ids when the block shape changes between launches.

import * as assert from 'assert';
import { Session } from './harness';

const PTX = `.version 8.0
.target sm_75
.address_size 64
.visible .entry probe(.param .u64 out, .param .u32 val) {
  .reg .b32 %r<8>;
  .reg .b64 %rd<8>;
  .shared .align 4 .b8 sbuf[64];
  .local .align 4 .b8 lbuf[16];
  ld.param.u64 %rd1, [out];
  ld.param.u32 %r1, [val];
  mov.u32 %r2, %ctaid.x;
  mul.wide.u32 %rd2, %r2, 12;
  add.u64 %rd3, %rd1, %rd2;
  ld.shared.u32 %r3, [sbuf];
  ld.local.u32 %r4, [lbuf];
  st.global.u32 [%rd3], %r3;
  st.global.u32 [%rd3+4], %r4;
  st.global.u32 [%rd3+8], %r1;
  st.shared.u32 [sbuf], %r1;
  st.local.u32 [lbuf], %r1;
  ret;
}
.visible .entry probe_sync(.param .u64 out, .param .u32 val) {
  .reg .b32 %r<8>;
  .reg .b64 %rd<8>;
  .shared .align 4 .b8 sbuf[64];
  .local .align 4 .b8 lbuf[16];
  ld.param.u64 %rd1, [out];
  ld.param.u32 %r1, [val];
  mov.u32 %r2, %tid.x;
  mul.wide.u32 %rd2, %r2, 4;
  mov.u64 %rd4, sbuf;
  add.u64 %rd5, %rd4, %rd2;
  ld.shared.u32 %r3, [%rd5];
  ld.local.u32 %r4, [lbuf];
  bar.sync 0;
  add.u32 %r5, %r1, %r2;
  st.shared.u32 [%rd5], %r5;
  st.local.u32 [lbuf], %r5;
  bar.sync 0;
  xor.b32 %r6, %r2, 1;
  mul.wide.u32 %rd6, %r6, 4;
  add.u64 %rd7, %rd4, %rd6;
  ld.shared.u32 %r7, [%rd7];
  mul.wide.u32 %rd2, %r2, 12;
  add.u64 %rd3, %rd1, %rd2;
  add.u32 %r3, %r3, %r4;
  st.global.u32 [%rd3], %r3;
  st.global.u32 [%rd3+4], %r7;
  st.global.u32 [%rd3+8], %r2;
  ret;
}
.visible .entry params(.param .u64 out, .param .s8 a, .param .s16 b, .param .u16 c, .param .f32 d, .param .f64 e, .param .s64 f) {
  .reg .b32 %r<8>;
  .reg .b16 %h<4>;
  .reg .f32 %f<2>;
  .reg .f64 %fd<2>;
  .reg .b64 %rd<4>;
  ld.param.u64 %rd1, [out];
  ld.param.s8 %h1, [a];
  cvt.s32.s16 %r1, %h1;
  ld.param.s16 %h2, [b];
  cvt.s32.s16 %r2, %h2;
  ld.param.u16 %h3, [c];
  cvt.u32.u16 %r3, %h3;
  ld.param.f32 %f1, [d];
  ld.param.f64 %fd1, [e];
  ld.param.s64 %rd2, [f];
  st.global.u32 [%rd1], %r1;
  st.global.u32 [%rd1+4], %r2;
  st.global.u32 [%rd1+8], %r3;
  st.global.f32 [%rd1+12], %f1;
  st.global.f64 [%rd1+16], %fd1;
  st.global.u64 [%rd1+24], %rd2;
  ret;
}
`;

describe('emulator: state reused across launches', () => {
  it('each launch of a sync-free kernel sees zeroed shared and local memory and its own params', async () => {
    const s = new Session();
    const m = s.load(PTX);
    const out = s.alloc(2 * 12);
    for (const val of [7, 9, 11]) {
      s.launch(m, 'probe', 2, 1, [out, val]);
      const got = await s.download(out, new Int32Array(6));
      // CTA 0: shared and local zero. CTA 1: shared fresh per CTA; its local frame is the one CTA 0 used
      // (uninitialised local memory: on block workers CTA 1 may run first, on a fresh frame, and read 0).
      const a = Array.from(got);
      assert.ok(a[4] === val || a[4] === 0, `launch with val=${val}: CTA 1 local ${a[4]}`);
      assert.deepStrictEqual([...a.slice(0, 4), a[5]], [0, 0, val, 0, val], `launch with val=${val}`);
    }
  });

  it('decodes every param width and sign from each launch\'s own buffer', async () => {
    const s = new Session();
    const m = s.load(PTX);
    const out = s.alloc(32);
    for (const [a, b, c, d, e, f] of [[-5, -1234, 65000, 1.5, -2.25e300, -3n], [100, 32000, 7, -0.125, Math.PI, 2n ** 62n + 1n]] as const) {
      s.launch(m, 'params', 1, 1, [out, a, b, c, { f32: d }, { f64: e }, f]);
      const got = await s.download(out, new Uint8Array(32));
      const dv = new DataView(got.buffer);
      assert.deepStrictEqual([dv.getInt32(0, true), dv.getInt32(4, true), dv.getInt32(8, true), dv.getFloat32(12, true), dv.getFloat64(16, true), dv.getBigInt64(24, true)],
        [a, b, c, d, e, f]);
    }
  });

  it('a barrier kernel relaunched with other block sizes keeps ids, zeroed memory and exchanges right', async () => {
    const s = new Session();
    const m = s.load(PTX);
    const out = s.alloc(64 * 12);
    for (const [n, val] of [[8, 100], [4, 200], [6, 300], [8, 400]]) {
      s.launch(m, 'probe_sync', 1, n, [out, val]);
      const got = await s.download(out, new Int32Array(n * 3));
      const want: number[] = [];
      for (let t = 0; t < n; t++) want.push(0, val + (t ^ 1), t);
      assert.deepStrictEqual(Array.from(got), want, `block ${n}`);
    }
  });
});
