// Texture and surface objects of one emulated context, and the fetch/load/store logic compiled kernels call
// (tex, suld, sust, txq, suq). Objects are keyed by the 64-bit handle the client minted; the kernel passes
// that handle as an ordinary parameter. CUDA arrays are plain allocations in the context's va window, laid
// out row-major and tightly packed (pitch = width * element size, slices pitch * height apart), so copies
// to and from arrays are ordinary 2D copies and a texture over an array is a pitched 3D view of memory.
//
// Sampling follows the CUDA programming guide, appendix "Texture Fetching": normalized coordinates are
// scaled by the extent, point filtering takes texel floor(x), linear filtering weights the neighbours of
// x - 0.5 with the fraction quantised to 8 fractional bits (the hardware's 9-bit fixed-point weights).

import { CudaError, CUresult, type TextureDesc, type TextureResource } from '../../server/src/backend';
import type { DeviceHeap } from './memory';
import { f16tof32, pack64 } from './rt';

/** CUarray_format values the emulator samples: bytes per component and how to read it. */
const FORMATS: Record<number, { size: number; kind: 'u' | 's' | 'h' | 'f' }> = {
  0x01: { size: 1, kind: 'u' }, 0x02: { size: 2, kind: 'u' }, 0x03: { size: 4, kind: 'u' },
  0x08: { size: 1, kind: 's' }, 0x09: { size: 2, kind: 's' }, 0x0a: { size: 4, kind: 's' },
  0x10: { size: 2, kind: 'h' }, 0x20: { size: 4, kind: 'f' },
};

/** Bytes of one component of `format`, or 0 for a format the emulator does not sample (BC, NV12, packed unorm). */
export function formatSize(format: number): number {
  return FORMATS[format]?.size ?? 0;
}

// CUaddress_mode, CUfilter_mode, CU_TRSF_* flags and CUresourcetype values of the driver API.
export const ADDRESS_WRAP = 0, ADDRESS_CLAMP = 1, ADDRESS_MIRROR = 2, ADDRESS_BORDER = 3;
export const TRSF_READ_AS_INTEGER = 1, TRSF_NORMALIZED_COORDINATES = 2, TRSF_SRGB = 0x10;
export const RES_ARRAY = 0, RES_LINEAR = 2, RES_PITCH2D = 3;
/** CUDA_ARRAY3D_* flags that change the layout or the use of an array. */
export const ARRAY_LAYERED = 0x01, ARRAY_SURFACE_LDST = 0x02;

/** Geometry codes the compiled kernels pass (from tex.1d/2d/3d/a1d/a2d and suld/sust). */
export const GEOM: Record<string, number> = { '1d': 1, '2d': 2, '3d': 3, a1d: 4, a2d: 5 };

interface View {
  addr: number;
  /** Extent in elements; 1 for absent dimensions. */
  w: number; h: number; d: number;
  /** Layers of a layered array (0 when not layered): d holds 1 and layers the count. */
  layers: number;
  pitch: number; slice: number;
  /** Element and component bytes, components per element, component kind. */
  es: number; cs: number; nc: number; kind: 'u' | 's' | 'h' | 'f';
}

interface TexObj extends View {
  /** A linear (tex1Dfetch) resource: an index outside the buffer reads zero. */
  linear: boolean;
  /** 8/16-bit integer components are returned as floats in [0,1] / [-1,1]. */
  normRead: boolean;
  /** sRGB-encoded 8-bit colour channels are converted to linear on read (CU_TRSF_SRGB). */
  srgb: boolean;
  /** Integer components returned as integers (element-type read of an integer format). */
  intRead: boolean;
  filterLinear: boolean;
  normCoords: boolean;
  /** [w, h, d] for the per-axis loops. */
  ext: [number, number, number];
  am: [number, number, number];
  border: [number, number, number, number];
  desc: TextureDesc;
  res: TextureResource;
}

function bad(msg: string): never {
  throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, msg);
}

const isDim = (v: number): boolean => Number.isSafeInteger(v) && v >= 1;

/** Array byte size for a descriptor, or throws INVALID_VALUE: the layout every side agrees on. */
export function arrayBytes(width: number, height: number, depth: number, format: number, channels: number): number {
  const cs = formatSize(format);
  if (!cs) bad(`array format 0x${format.toString(16)} is not supported by the emulated device`);
  if (channels !== 1 && channels !== 2 && channels !== 4) bad(`arrays have 1, 2 or 4 channels, not ${channels}`);
  if (!isDim(width) || !Number.isSafeInteger(height) || height < 0 || !Number.isSafeInteger(depth) || depth < 0) bad('array extent must be positive');
  const bytes = width * Math.max(height, 1) * Math.max(depth, 1) * cs * channels;
  if (!Number.isSafeInteger(bytes)) bad('array extent too large');
  return bytes;
}

function viewOf(r: TextureResource): View {
  const cs = formatSize(r.format);
  if (!cs) bad(`format 0x${r.format.toString(16)} is not supported by the emulated device`);
  if (r.channels !== 1 && r.channels !== 2 && r.channels !== 4) bad(`1, 2 or 4 channels, not ${r.channels}`);
  const es = cs * r.channels;
  const info = FORMATS[r.format];
  if (r.addr % cs !== 0) bad('resource address must be aligned to its component size');
  if (r.type === RES_LINEAR) {
    const w = Math.floor(r.size / es);
    if (!isDim(w)) bad('linear resource smaller than one element');
    return { addr: r.addr, w, h: 1, d: 1, layers: 0, pitch: w * es, slice: w * es, es, cs, nc: r.channels, kind: info.kind };
  }
  if (r.type === RES_PITCH2D) {
    if (!isDim(r.width) || !isDim(r.height)) bad('pitch2D resource extent must be positive');
    if (r.pitch < r.width * es || r.pitch % cs !== 0) bad(`pitch ${r.pitch} is smaller than a row of ${r.width * es} bytes or misaligned`);
    return { addr: r.addr, w: r.width, h: r.height, d: 1, layers: 0, pitch: r.pitch, slice: r.pitch * r.height, es, cs, nc: r.channels, kind: info.kind };
  }
  if (r.type === RES_ARRAY) {
    const w = r.width, h = Math.max(r.height, 1), d = Math.max(r.depth, 1);
    const layered = (r.flags & ARRAY_LAYERED) !== 0;
    return { addr: r.addr, w, h, d: layered ? 1 : d, layers: layered ? d : 0, pitch: w * es, slice: w * es * h, es, cs, nc: r.channels, kind: info.kind };
  }
  throw new CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED, `resource type ${r.type} (mipmapped arrays) is not supported by the emulated device`);
}

/** One context's objects. The kernel reaches it through its heap (one heap per context). */
export class TexRegistry {
  readonly tex = new Map<number, TexObj>();
  readonly surf = new Map<number, View>();
  /** Scratch result of the last fetch/load: read by the compiled kernel straight after the call. */
  readonly out = new Float64Array(4);
  readonly outL: (number | bigint)[] = [0, 0, 0, 0];
  // Scratch of fetch(): coordinates, the two texel indices per axis and the linear weights.
  private readonly crd = new Float64Array(3);
  private readonly i0 = new Int32Array(3);
  private readonly i1 = new Int32Array(3);
  private readonly wa = new Float64Array(3);
  private readonly acc = new Float64Array(4);
  private readonly pick = new Int32Array(8);
  private dv: DataView | null = null;

  constructor(readonly heap: DeviceHeap) {}

  createTex(handle: number, res: TextureResource, desc: TextureDesc): void {
    if (!Number.isSafeInteger(handle) || handle <= 0) bad(`texture handle ${handle}`);
    if (this.tex.has(handle)) bad(`texture handle ${handle} is already in use`);
    const v = viewOf(res);
    const intFmt = v.kind === 'u' || v.kind === 's';
    // 32-bit integer components have no normalized form: they are always read as integers.
    const intRead = intFmt && ((desc.flags & TRSF_READ_AS_INTEGER) !== 0 || v.cs === 4);
    const filterLinear = desc.filterMode === 1;
    if (filterLinear && intRead) bad('linear filtering needs a float or normalized-float read of the texture');
    if (res.type === RES_LINEAR && (filterLinear || (desc.flags & TRSF_NORMALIZED_COORDINATES))) {
      // Linear resources are fetched by integer index (tex1Dfetch) only.
      bad('a linear-memory texture takes point filtering and unnormalized coordinates');
    }
    const am = desc.addressMode.map((m) => {
      if (m < 0 || m > 3) bad(`address mode ${m}`);
      return m;
    }) as [number, number, number];
    const border = desc.borderColor.map((b) => Math.fround(b)) as [number, number, number, number];
    this.tex.set(handle, {
      ...v, linear: res.type === RES_LINEAR, normRead: intFmt && !intRead, intRead, filterLinear,
      srgb: (desc.flags & TRSF_SRGB) !== 0 && intFmt && !intRead && v.cs === 1,
      normCoords: (desc.flags & TRSF_NORMALIZED_COORDINATES) !== 0, am, border, desc, res, ext: [v.w, v.h, v.d],
    });
  }

  destroyTex(handle: number): void {
    if (!this.tex.delete(handle)) throw new CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE, `unknown texture object ${handle}`);
  }

  createSurf(handle: number, res: TextureResource): void {
    if (!Number.isSafeInteger(handle) || handle <= 0) bad(`surface handle ${handle}`);
    if (this.surf.has(handle)) bad(`surface handle ${handle} is already in use`);
    if (res.type !== RES_ARRAY) bad('a surface object needs a CUDA array resource');
    if ((res.flags & ARRAY_SURFACE_LDST) === 0) bad('the array was not created with CUDA_ARRAY3D_SURFACE_LDST');
    this.surf.set(handle, viewOf(res));
  }

  destroySurf(handle: number): void {
    if (!this.surf.delete(handle)) throw new CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE, `unknown surface object ${handle}`);
  }

  private view(): DataView {
    const buf = this.heap.views.buf;
    if (!this.dv || this.dv.buffer !== buf) this.dv = new DataView(buf);
    return this.dv;
  }

  private texObj(h: number | bigint): TexObj {
    const t = this.tex.get(Number(h));
    if (!t) throw new CudaError(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, `texture fetch through ${h}, which is not a live texture object`);
    return t;
  }

  private surfObj(h: number | bigint): View {
    const s = this.surf.get(Number(h));
    if (!s) throw new CudaError(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, `surface access through ${h}, which is not a live surface object`);
    return s;
  }

  /** Component c of texel (i, j, k, layer) as the read mode returns it. */
  private comp(t: TexObj, dv: DataView, off: number, c: number): number {
    const o = off + c * t.cs;
    switch (t.kind) {
      case 'f': return dv.getFloat32(o, true);
      case 'h': return f16tof32(dv.getUint16(o, true));
      case 'u': {
        const v = t.cs === 1 ? dv.getUint8(o) : t.cs === 2 ? dv.getUint16(o, true) : dv.getInt32(o, true);
        return t.normRead ? Math.fround(v / (t.cs === 1 ? 255 : 65535)) : v;
      }
      default: {
        const v = t.cs === 1 ? dv.getInt8(o) : t.cs === 2 ? dv.getInt16(o, true) : dv.getInt32(o, true);
        return t.normRead ? Math.max(Math.fround(v / (t.cs === 1 ? 127 : 32767)), -1) : v;
      }
    }
  }

  /** Adds weight * texel into acc (or the border colour when an index is -1). */
  private texel(t: TexObj, i: number, j: number, k: number, layer: number, wgt: number, acc: Float64Array): void {
    if (i < 0 || j < 0 || k < 0) {
      for (let c = 0; c < 4; c++) acc[c] += wgt * t.border[c];
      return;
    }
    const addr = t.addr + layer * t.slice + k * t.slice + j * t.pitch + i * t.es;
    const off = this.heap.check(addr, t.es);
    const dv = this.view();
    for (let c = 0; c < 4; c++) {
      let v = c < t.nc ? this.comp(t, dv, off, c) : c === 3 ? 1 : 0;
      if (t.srgb && c < 3 && c < t.nc) v = Math.fround(v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
      acc[c] += wgt * v;
    }
  }

  /**
   * tex.{geom}: the four components of the fetch land in `out`. `intCoords` is the s32 coordinate form
   * (texel indices, as tex1Dfetch uses). For layered geometries c0 is the layer.
   */
  fetch(h: number | bigint, geom: number, intCoords: boolean, c0: number, c1: number, c2: number, c3: number): Float64Array {
    const t = this.texObj(h);
    const out = this.out;
    out.fill(0);
    let layer = 0;
    const crd = this.crd;
    crd[0] = c0; crd[1] = c1; crd[2] = c2;
    if (geom === 4 || geom === 5) {
      layer = Math.min(Math.max(c0 | 0, 0), Math.max(t.layers - 1, 0));
      crd[0] = c1; crd[1] = c2; crd[2] = 0;
      void c3;
    }
    const dims = geom === 1 || geom === 4 ? 1 : geom === 2 || geom === 5 ? 2 : 3;
    const ext = t.ext;
    const i0 = this.i0, i1 = this.i1;
    i0.fill(0);
    if (intCoords) {
      for (let a = 0; a < dims; a++) {
        const i = crd[a] | 0;
        if (t.linear && (i < 0 || i >= ext[a])) return out; // tex1Dfetch outside the buffer reads zero
        i0[a] = this.resolve(i, ext[a], t.am[a], t.normCoords);
      }
      this.texel(t, i0[0], i0[1], i0[2], layer, 1, out);
      return this.finish(t, out);
    }
    if (t.normCoords) for (let a = 0; a < dims; a++) crd[a] = Math.fround(crd[a] * ext[a]);
    if (!t.filterLinear) {
      for (let a = 0; a < dims; a++) {
        const c = crd[a];
        // NaN coordinates sample texel 0 after clamping, as the hardware's float-to-int conversion gives 0.
        i0[a] = this.resolve(c !== c ? 0 : Math.floor(c), ext[a], t.am[a], t.normCoords);
      }
      this.texel(t, i0[0], i0[1], i0[2], layer, 1, out);
      return this.finish(t, out);
    }
    const wa = this.wa;
    i1.fill(0);
    for (let a = 0; a < dims; a++) {
      const xb = crd[a] !== crd[a] ? -0.5 : crd[a] - 0.5;
      const f = Math.floor(xb);
      wa[a] = Math.round((xb - f) * 256) / 256;
      i0[a] = this.resolve(f, ext[a], t.am[a], t.normCoords);
      i1[a] = this.resolve(f + 1, ext[a], t.am[a], t.normCoords);
    }
    const corners = 1 << dims;
    for (let m = 0; m < corners; m++) {
      let wgt = 1;
      for (let a = 0; a < dims; a++) wgt *= (m >> a) & 1 ? wa[a] : 1 - wa[a];
      if (wgt !== 0) this.texel(t, m & 1 ? i1[0] : i0[0], m & 2 ? i1[1] : i0[1], m & 4 ? i1[2] : i0[2], layer, wgt, out);
    }
    return this.finish(t, out);
  }

  /**
   * tld4.{r,g,b,a}.2d / a2d (tex2Dgather): component `comp` of the four texels linear filtering would blend,
   * in the gather order (i0, j1), (i1, j1), (i1, j0), (i0, j0), unweighted.
   */
  gather(h: number | bigint, geom: number, comp: number, c0: number, c1: number, c2: number): Float64Array {
    const t = this.texObj(h);
    const out = this.out;
    let layer = 0, x = c0, y = c1;
    if (geom === 5) { layer = Math.min(Math.max(c0 | 0, 0), Math.max(t.layers - 1, 0)); x = c1; y = c2; }
    if (t.normCoords) { x = Math.fround(x * t.w); y = Math.fround(y * t.h); }
    const fx = Math.floor(x !== x ? -0.5 : x - 0.5), fy = Math.floor(y !== y ? -0.5 : y - 0.5);
    const x0 = this.resolve(fx, t.w, t.am[0], t.normCoords), x1 = this.resolve(fx + 1, t.w, t.am[0], t.normCoords);
    const y0 = this.resolve(fy, t.h, t.am[1], t.normCoords), y1 = this.resolve(fy + 1, t.h, t.am[1], t.normCoords);
    const acc = this.acc;
    const pick = this.pick;
    pick[0] = x0; pick[1] = y1; pick[2] = x1; pick[3] = y1; pick[4] = x1; pick[5] = y0; pick[6] = x0; pick[7] = y0;
    for (let k = 0; k < 4; k++) {
      acc.fill(0);
      this.texel(t, pick[2 * k], pick[2 * k + 1], 0, layer, 1, acc);
      out[k] = acc[comp];
    }
    return this.finish(t, out);
  }

  private finish(t: TexObj, out: Float64Array): Float64Array {
    if (t.intRead) for (let c = 0; c < 4; c++) out[c] = out[c] | 0;
    else for (let c = 0; c < 4; c++) out[c] = Math.fround(out[c]);
    return out;
  }

  /** Texel index i of an axis of n texels under address mode m; -1 selects the border colour. */
  private resolve(i: number, n: number, m: number, norm: boolean): number {
    if (i >= 0 && i < n) return i;
    // Wrap and mirror exist for normalized coordinates only; otherwise the hardware clamps.
    if (m === ADDRESS_BORDER) return -1;
    if (norm && m === ADDRESS_WRAP) return ((i % n) + n) % n;
    if (norm && m === ADDRESS_MIRROR) {
      const p = ((i % (2 * n)) + 2 * n) % (2 * n);
      return p < n ? p : 2 * n - 1 - p;
    }
    return i < 0 ? 0 : n - 1;
  }

  /**
   * Byte offset of a surface access of `bytes` at byte x and rows y/z (layer for a1d/a2d), after the
   * out-of-range mode (0 trap, 1 clamp, 2 zero); -1 when a zero-mode access is out of range.
   */
  private surfAddr(s: View, geom: number, mode: number, bytes: number, x: number, y: number, z: number): number {
    let layer = 0;
    if (geom === 4) { layer = x; x = y; y = 0; z = 0; } else if (geom === 5) { layer = x; x = y; y = z; z = 0; }
    if (geom === 1 || geom === 4) y = 0;
    if (geom !== 3) z = 0;
    const row = s.w * s.es;
    const nl = s.layers || 1;
    const out = x < 0 || x + bytes > row || y < 0 || y >= s.h || z < 0 || z >= s.d || layer < 0 || layer >= nl;
    if (out) {
      if (mode === 2) return -1;
      if (mode === 0) throw new CudaError(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, `surface access of ${bytes} bytes at (${x}, ${y}, ${z}) is outside the ${s.w}x${s.h}x${s.d} surface`);
      const cl = (v: number, hi: number): number => (v < 0 ? 0 : v > hi ? hi : v);
      // Clamping picks the nearest element: an x past the row lands on the start of the last element.
      if (x + bytes > row) x = Math.min((s.w - 1) * s.es, row - bytes);
      x = cl(x, row - bytes); y = cl(y, s.h - 1); z = cl(z, s.d - 1); layer = cl(layer, nl - 1);
    }
    if (x % Math.min(bytes, s.es) !== 0) {
      throw new CudaError(CUresult.CUDA_ERROR_MISALIGNED_ADDRESS, `surface access of ${bytes} bytes at byte ${x} is misaligned`);
    }
    return this.heap.check(s.addr + layer * s.slice + z * s.slice + y * s.pitch + x, bytes);
  }

  /** suld.b: `n` components of `cb` bytes each; 8-byte components land in outL, the rest in out. */
  load(h: number | bigint, geom: number, mode: number, cb: number, n: number, x: number, y: number, z: number): void {
    const s = this.surfObj(h);
    const off = this.surfAddr(s, geom, mode, cb * n, x, y, z);
    const dv = this.view();
    for (let c = 0; c < n; c++) {
      const o = off + c * cb;
      if (off < 0) { this.out[c] = 0; this.outL[c] = 0; continue; }
      if (cb === 8) this.outL[c] = pack64(dv.getInt32(o, true), dv.getInt32(o + 4, true));
      else this.out[c] = cb === 1 ? dv.getUint8(o) : cb === 2 ? dv.getUint16(o, true) : dv.getInt32(o, true);
    }
  }

  /** sust.b: stores the components the kernel put in out / outL. */
  store(h: number | bigint, geom: number, mode: number, cb: number, n: number, x: number, y: number, z: number): void {
    const s = this.surfObj(h);
    const off = this.surfAddr(s, geom, mode, cb * n, x, y, z);
    if (off < 0) return;
    const dv = this.view();
    for (let c = 0; c < n; c++) {
      const o = off + c * cb;
      if (cb === 8) dv.setBigInt64(o, BigInt(this.outL[c]), true);
      else if (cb === 1) dv.setUint8(o, this.out[c] & 0xff);
      else if (cb === 2) dv.setUint16(o, this.out[c] & 0xffff, true);
      else dv.setInt32(o, this.out[c] | 0, true);
    }
  }

  /** txq / suq: `what` is the query suffix (width, height, depth, ...). */
  query(h: number | bigint, surface: boolean, what: string): number {
    const v: View = surface ? this.surfObj(h) : this.texObj(h);
    switch (what) {
      case 'width': return v.w;
      case 'height': return v.h;
      case 'depth': return v.d;
      case 'array_size': return v.layers;
      case 'channel_data_type': return FORMAT_CODE[v.kind + v.cs] ?? 0;
      case 'channel_order': return v.nc;
      case 'num_mipmap_levels': return 1;
      case 'num_samples': return 0;
    }
    if (surface) throw new CudaError(CUresult.CUDA_ERROR_ILLEGAL_INSTRUCTION, `suq.${what} is not supported`);
    const t = v as TexObj;
    switch (what) {
      case 'normalized_coords': return t.normCoords ? 1 : 0;
      case 'filter_mode': return t.filterLinear ? 1 : 0;
      case 'addr_mode_0': return t.am[0];
      case 'addr_mode_1': return t.am[1];
      case 'addr_mode_2': return t.am[2];
    }
    throw new CudaError(CUresult.CUDA_ERROR_ILLEGAL_INSTRUCTION, `txq.${what} is not supported`);
  }
}

/** The driver's CUarray_format code for a component kind and size (txq.channel_data_type). */
const FORMAT_CODE: Record<string, number> = { u1: 0x01, u2: 0x02, u4: 0x03, s1: 0x08, s2: 0x09, s4: 0x0a, h2: 0x10, f4: 0x20 };

const registries = new WeakMap<DeviceHeap, TexRegistry>();

/** The registry of the context that owns `heap` (made on first use). */
export function texRegistry(heap: DeviceHeap): TexRegistry {
  let r = registries.get(heap);
  if (!r) { r = new TexRegistry(heap); registries.set(heap, r); }
  return r;
}
