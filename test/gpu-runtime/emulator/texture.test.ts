// Texture fetches and surface loads/stores through hand-written PTX kernels on an emulated context, checked
// against tables computed by hand from the CUDA programming guide's "Texture Fetching" rules (point and
// linear filtering with 8-bit fractional weights, each address mode, normalized coordinates, read modes).
import { strict as assert } from 'node:assert';
import { CudaError, CUresult, type TextureDesc, type TextureResource } from '../../../gpu-runtime/server/src/backend';
import { Session } from './harness';

const HEAD = '.version 7.5\n.target sm_75\n.address_size 64\n';

/** Kernel `k`: thread i reads coords[3i..3i+2] and stores the four components of one tex fetch at out[4i]. */
function texKernel(geom: string, dtype: 'f32' | 's32', ctype: 'f32' | 's32'): string {
  const n = { '1d': 1, '2d': 2, '3d': 4, a1d: 2, a2d: 4 }[geom]!;
  const cr = ctype === 'f32' ? '%f' : '%r';
  const coords = [1, 2, 3, 3].slice(0, n).map((k) => `${cr}${k}`);
  const dr = dtype === 'f32' ? '%f' : '%r';
  const d = [4, 5, 6, 7].map((k) => `${dr}${k}`).join(', ');
  // Layered forms take the layer as an integer first coordinate.
  if (geom.startsWith('a')) coords.splice(0, n, '%r8', ...[`${cr}1`, `${cr}2`, `${cr}2`].slice(0, n - 1));
  return `${HEAD}.visible .entry k(.param .u64 t, .param .u64 c, .param .u64 o) {
  .reg .b64 %rd<8>; .reg .f32 %f<8>; .reg .b32 %r<10>;
  ld.param.u64 %rd1, [t]; ld.param.u64 %rd2, [c]; ld.param.u64 %rd3, [o];
  mov.u32 %r9, %tid.x;
  mul.wide.u32 %rd4, %r9, 12; add.s64 %rd5, %rd2, %rd4;
  ld.global.${ctype} ${cr}1, [%rd5]; ld.global.${ctype} ${cr}2, [%rd5+4]; ld.global.${ctype} ${cr}3, [%rd5+8];
  ld.global.u32 %r8, [%rd5+8];
  tex.${geom}.v4.${dtype}.${ctype} {${d}}, [%rd1, {${coords.join(', ')}}];
  mul.wide.u32 %rd4, %r9, 16; add.s64 %rd6, %rd3, %rd4;
  st.global.v4.${dtype === 'f32' ? 'f32' : 's32'} [%rd6], {${d}};
  ret;
}`;
}

const desc = (am: number, filter: number, flags: number, border: number[] = [0, 0, 0, 0]): TextureDesc => ({
  addressMode: [am, am, am], filterMode: filter, flags, borderColor: border as TextureDesc['borderColor'],
});
const FLOAT = 0x20, U8 = 0x01, S8 = 0x08, U16 = 0x02, HALF = 0x10;
const WRAP = 0, CLAMP = 1, MIRROR = 2, BORDER = 3;
const NORM = 2, AS_INT = 1;

describe('emulator: texture objects', function () {
  this.timeout(60000);
  let s: Session;
  let handle = 1;
  beforeEach(() => { s = new Session(); });
  afterEach(() => s.ctx.destroy());

  const arrayRes = (addr: number, format: number, channels: number, w: number, h = 0, d = 0, flags = 0): TextureResource =>
    ({ type: 0, addr, format, channels, width: w, height: h, depth: d, flags, pitch: 0, size: 0 });

  /** Fetches every coordinate triple through a `geom` kernel; returns 4 components per triple. */
  async function sample(geom: string, res: TextureResource, d: TextureDesc, coords: number[][], dtype: 'f32' | 's32' = 'f32', ctype: 'f32' | 's32' = 'f32'): Promise<number[][]> {
    const h = handle++;
    s.ctx.createTexObject!(h, res, d);
    const cbuf = new ArrayBuffer(coords.length * 12);
    coords.forEach((c, i) => c.forEach((v, k) => {
      if (ctype === 'f32' && !(geom.startsWith('a') && k === 2)) new DataView(cbuf).setFloat32(i * 12 + k * 4, v, true);
      else new DataView(cbuf).setInt32(i * 12 + k * 4, v, true);
    }));
    const cAddr = s.upload(new Uint8Array(cbuf));
    const oAddr = s.alloc(coords.length * 16);
    s.launch(s.load(texKernel(geom, dtype, ctype)), 'k', 1, coords.length, [h, cAddr, oAddr]);
    const out = await s.download(oAddr, new Uint8Array(coords.length * 16));
    const dv = new DataView(out.buffer);
    s.ctx.destroyTexObject!(h);
    return coords.map((_, i) => [0, 1, 2, 3].map((k) => (dtype === 'f32' ? dv.getFloat32(i * 16 + k * 4, true) : dv.getInt32(i * 16 + k * 4, true))));
  }
  const xs = (v: number[]): number[][] => v.map((x) => [x, 0, 0]);
  const firsts = (r: number[][]): number[] => r.map((c) => c[0]);

  it('1D point and linear filtering, unnormalized, with clamp and border', async () => {
    const a = s.upload(new Float32Array([10, 20, 30, 40]));
    const res = arrayRes(a, FLOAT, 1, 4);
    assert.deepEqual(firsts(await sample('1d', res, desc(CLAMP, 0, 0), xs([0, 0.99, 1.5, 3.99, -1, 4.5]))), [10, 10, 20, 40, 10, 40]);
    // x = 1.2: x - 0.5 = 0.7 whose weight is quantised to 179/256, so 10 + 10 * 179/256, not 17.
    assert.deepEqual(firsts(await sample('1d', res, desc(CLAMP, 1, 0), xs([1.0, 0.5, 1.3, 1.2, 0.2, 4.2]))),
      [15, 10, Math.fround(10 + 10 * (Math.round(0.8 * 256) / 256)), Math.fround(10 + 10 * 179 / 256), 10, 40]);
    assert.deepEqual(firsts(await sample('1d', res, desc(BORDER, 0, 0, [7, 0, 0, 0]), xs([-0.5, 4, 2.5]))), [7, 7, 30]);
    // Missing components read as 0, 0, 1.
    assert.deepEqual((await sample('1d', res, desc(CLAMP, 0, 0), xs([2])))[0], [30, 0, 0, 1]);
  });

  it('normalized coordinates under wrap, mirror, clamp and border', async () => {
    const a = s.upload(new Float32Array([10, 20, 30, 40]));
    const res = arrayRes(a, FLOAT, 1, 4);
    assert.deepEqual(firsts(await sample('1d', res, desc(WRAP, 1, NORM), xs([0.125, -0.125, 0, 1.0]))), [10, 40, 25, 25]);
    assert.deepEqual(firsts(await sample('1d', res, desc(CLAMP, 1, NORM), xs([0, 1.0]))), [10, 40]);
    assert.deepEqual(firsts(await sample('1d', res, desc(MIRROR, 1, NORM), xs([0, 1.0]))), [10, 40]);
    assert.deepEqual(firsts(await sample('1d', res, desc(MIRROR, 0, NORM), xs([1.1, 1.3, -0.1]))), [40, 30, 10]);
    assert.deepEqual(firsts(await sample('1d', res, desc(WRAP, 0, NORM), xs([1.3, -0.1]))), [20, 40]);
    assert.deepEqual(firsts(await sample('1d', res, desc(BORDER, 1, NORM, [7, 0, 0, 0]), xs([0]))), [8.5]);
    // Wrap without normalized coordinates behaves as clamp.
    assert.deepEqual(firsts(await sample('1d', res, desc(WRAP, 0, 0), xs([5, -3]))), [40, 10]);
  });

  it('2D and 3D bilinear / trilinear filtering, and layered 2D', async () => {
    const a = s.upload(new Float32Array([0, 1, 2, 3]));
    const r2 = await sample('2d', arrayRes(a, FLOAT, 1, 2, 2), desc(CLAMP, 1, 0), [[1, 1, 0], [0.5, 1.5, 0], [1.25, 0.5, 0]]);
    assert.deepEqual(firsts(r2), [1.5, 2, 0.75]);
    const v = new Float32Array(2 * 2 * 2).map((_, i) => i * 8); // value(x,y,z) = 8x + 16y + 32z
    const b = s.upload(v);
    const r3 = await sample('3d', arrayRes(b, FLOAT, 1, 2, 2, 2), desc(CLAMP, 1, 0), [[1, 1, 1], [0.5, 1.5, 1.5], [1.5, 0.5, 0.75]]);
    assert.deepEqual(firsts(r3), [28, 48, 8 + 32 * 0.25]);
    // Layered: two 2x2 layers; the layer is the integer first coordinate.
    const l = s.upload(new Float32Array([0, 1, 2, 3, 100, 101, 102, 103]));
    const rl = await sample('a2d', arrayRes(l, FLOAT, 1, 2, 2, 2, 1), desc(CLAMP, 0, 0), [[0.5, 1.5, 1], [1.5, 0.5, 0], [0.5, 0.5, 7]]);
    assert.deepEqual(firsts(rl), [102, 1, 100]);
  });

  it('read modes: normalized float for 8/16-bit integers, element type, half floats', async () => {
    const u = s.upload(new Uint8Array([0, 255, 128, 51]));
    assert.deepEqual((await sample('1d', arrayRes(u, U8, 4, 1), desc(CLAMP, 0, 0), xs([0])))[0], [0, 1, Math.fround(128 / 255), Math.fround(0.2)]);
    // sRGB: colour channels decode to linear, alpha stays as stored.
    const srgb = (await sample('1d', arrayRes(u, U8, 4, 1), desc(CLAMP, 0, 0x10), xs([0])))[0];
    assert.deepEqual(srgb, [0, 1, Math.fround(((Math.fround(128 / 255) + 0.055) / 1.055) ** 2.4), Math.fround(0.2)]);
    const sb = s.upload(new Int8Array([-128, -127, 127, 0]));
    assert.deepEqual((await sample('1d', arrayRes(sb, S8, 4, 1), desc(CLAMP, 0, 0), xs([0])))[0], [-1, -1, 1, 0]);
    const w = s.upload(new Uint16Array([65535, 7]));
    assert.deepEqual((await sample('1d', arrayRes(w, U16, 2, 1), desc(CLAMP, 0, AS_INT), xs([0]), 's32'))[0], [65535, 7, 0, 1]);
    const hf = s.upload(new Uint16Array([0x3c00, 0xc000])); // 1.0, -2.0
    assert.deepEqual(firsts(await sample('1d', arrayRes(hf, HALF, 1, 2), desc(CLAMP, 1, 0), xs([0.5, 1.5, 1.0]))), [1, -2, -0.5]);
    await assert.rejects(async () => sample('1d', arrayRes(w, U16, 1, 2), desc(CLAMP, 1, AS_INT), xs([0])),
      (e: unknown) => e instanceof CudaError && e.code === CUresult.CUDA_ERROR_INVALID_VALUE);
  });

  it('tex1Dfetch on linear memory reads zero outside the buffer', async () => {
    const a = s.upload(new Int32Array([5, -6, 7]));
    const res: TextureResource = { type: 2, addr: a, format: 0x0a, channels: 1, width: 0, height: 0, depth: 0, flags: 0, pitch: 0, size: 12 };
    const r = await sample('1d', res, desc(CLAMP, 0, AS_INT), xs([0, 1, 2, 3, -1]), 's32', 's32');
    assert.deepEqual(firsts(r), [5, -6, 7, 0, 0]);
  });

  it('tld4 gathers one component of the bilinear footprint; tex.level samples level 0; txq reports the extent', async () => {
    // 3x2 float2 texels: component x = 10 * col + row, y = -(that).
    const v = new Float32Array(3 * 2 * 2);
    for (let r = 0; r < 2; r++) for (let c = 0; c < 3; c++) { v[(r * 3 + c) * 2] = 10 * c + r; v[(r * 3 + c) * 2 + 1] = -(10 * c + r); }
    const a = s.upload(v);
    const h = handle++;
    s.ctx.createTexObject!(h, arrayRes(a, FLOAT, 2, 3, 2), desc(CLAMP, 0, 0));
    const ptx = `${HEAD}.visible .entry k(.param .u64 t, .param .u64 o) {
  .reg .b64 %rd<4>; .reg .f32 %f<16>; .reg .b32 %r<4>;
  ld.param.u64 %rd1, [t]; ld.param.u64 %rd2, [o];
  mov.f32 %f1, 0f3FC00000; mov.f32 %f2, 0f3F800000; mov.f32 %f3, 0f40400000;
  tld4.g.2d.v4.f32.f32 {%f4, %f5, %f6, %f7}, [%rd1, {%f1, %f2}];
  st.global.v4.f32 [%rd2], {%f4, %f5, %f6, %f7};
  tex.level.2d.v4.f32.f32 {%f8, %f9, %f10, %f11}, [%rd1, {%f1, %f2}], %f3;
  st.global.v4.f32 [%rd2+16], {%f8, %f9, %f10, %f11};
  txq.width.b32 %r1, [%rd1]; txq.height.b32 %r2, [%rd1];
  st.global.v2.u32 [%rd2+32], {%r1, %r2};
  ret;
}`;
    const o = s.alloc(48);
    s.launch(s.load(ptx), 'k', 1, 1, [h, o]);
    const out = await s.download(o, new Float32Array(12));
    // (1.5, 1.0): x - 0.5 = 1 -> columns 1, 2; y - 0.5 = 0.5 -> rows 0, 1. Order (x0,y1) (x1,y1) (x1,y0) (x0,y0).
    assert.deepEqual([...out.slice(0, 4)], [-11, -21, -20, -10]);
    assert.deepEqual([...out.slice(4, 8)], [11, -11, 0, 1]); // point sample of texel (1, 1)
    assert.deepEqual([...new Uint32Array(out.buffer, 32, 2)], [3, 2]);
  });

  it('a fetch through a destroyed or unknown object faults the launch', async () => {
    const a = s.upload(new Float32Array([1]));
    s.ctx.createTexObject!(99, arrayRes(a, FLOAT, 1, 1), desc(CLAMP, 0, 0));
    s.ctx.destroyTexObject!(99);
    const c = s.upload(new Float32Array(3));
    const o = s.alloc(16);
    s.launch(s.load(texKernel('1d', 'f32', 'f32')), 'k', 1, 1, [99, c, o]);
    assert.equal(s.ctx.stickyError, CUresult.CUDA_ERROR_ILLEGAL_ADDRESS);
  });
});

describe('emulator: surface objects', function () {
  this.timeout(60000);
  const surfPtx = (mode: string): string => `${HEAD}.visible .entry k(.param .u64 s, .param .u32 x, .param .u32 y, .param .u64 o) {
  .reg .b64 %rd<4>; .reg .b32 %r<8>;
  ld.param.u64 %rd1, [s]; ld.param.u32 %r1, [x]; ld.param.u32 %r2, [y]; ld.param.u64 %rd2, [o];
  suld.b.2d.v2.b32.${mode} {%r3, %r4}, [%rd1, {%r1, %r2}];
  st.global.v2.u32 [%rd2], {%r3, %r4};
  add.s32 %r3, %r3, 1000; add.s32 %r4, %r4, 2000;
  sust.b.2d.v2.b32.${mode} [%rd1, {%r1, %r2}], {%r3, %r4};
  suld.b.2d.b16.${mode} %r5, [%rd1, {%r1, %r2}];
  st.global.u32 [%rd2+8], %r5;
  suq.width.b32 %r6, [%rd1];
  st.global.u32 [%rd2+12], %r6;
  ret;
}`;

  it('loads and stores raw bytes at byte-addressed x, with trap, clamp and zero out of range', async () => {
    const s = new Session();
    try {
      const W = 3, H = 2;
      const data = new Int32Array(W * H * 2).map((_, i) => i);
      const a = s.upload(data);
      const res: TextureResource = { type: 0, addr: a, format: 0x0a, channels: 2, width: W, height: H, depth: 0, flags: 2, pitch: 0, size: 0 };
      s.ctx.createSurfObject!(5, res);
      const run = async (mode: string, x: number, y: number): Promise<number[]> => {
        const o = s.alloc(16);
        s.launch(s.load(surfPtx(mode)), 'k', 1, 1, [5, x, y, o]);
        return [...await s.download(o, new Int32Array(4))];
      };
      // Element (1,1) is ints 8 and 9 at byte x = 8.
      assert.deepEqual(await run('trap', 8, 1), [8, 9, 1008, W]);
      const back = await s.download(a, new Int32Array(W * H * 2));
      assert.deepEqual([back[8], back[9]], [1008, 2009]);
      assert.deepEqual(await run('zero', 24, 0), [0, 0, 0, W]);
      assert.equal((await s.download(a, new Int32Array(W * H * 2)))[4], 4, 'a zero-mode store out of range writes nothing');
      // Clamp: x past the row lands on the last element of row 0 (ints 4, 5).
      assert.deepEqual(await run('clamp', 40, 0), [4, 5, 1004, W]);
      const o = s.alloc(16);
      s.launch(s.load(surfPtx('trap')), 'k', 1, 1, [5, 0, 2, o]);
      assert.equal(s.ctx.stickyError, CUresult.CUDA_ERROR_ILLEGAL_ADDRESS);
    } finally {
      s.ctx.destroy();
    }
  });

  it('refuses an array created without surface load/store', () => {
    const s = new Session();
    try {
      const a = s.alloc(64);
      const res: TextureResource = { type: 0, addr: a, format: 0x20, channels: 1, width: 4, height: 0, depth: 0, flags: 0, pitch: 0, size: 0 };
      assert.throws(() => s.ctx.createSurfObject!(6, res), (e: unknown) => e instanceof CudaError && e.code === CUresult.CUDA_ERROR_INVALID_VALUE);
    } finally {
      s.ctx.destroy();
    }
  });
});
