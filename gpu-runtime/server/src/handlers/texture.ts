// ARRAY_* and TEXOBJ_/SURFOBJ_*: CUDA arrays are allocations of the session with a recorded descriptor (the
// layout is the contract of ARRAY_CREATE in ops.yaml); texture and surface objects are resolved here to
// the memory they read, range-checked against the session's own allocations, and handed to the backend.
import { CudaError, CUresult, type TextureDesc, type TextureResource } from '../backend';
import { decodeArrayCreateArgs, decodeArrayDestroyArgs, decodeSurfobjDestroyArgs, decodeTexobjDestroyArgs } from '../../../protocol/generated/ops';
import { unpackArgs } from '../../../protocol/ts/codec';
import type { HandlerTable } from '../handler';
import type { Session } from '../session';

/** Bytes per component of each CUarray_format a CUDA array may have here. */
const FORMAT_BYTES: Record<number, number> = { 0x01: 1, 0x02: 2, 0x03: 4, 0x08: 1, 0x09: 2, 0x0a: 4, 0x10: 2, 0x20: 4 };
const RES_ARRAY = 0, RES_MIPMAPPED = 1, RES_LINEAR = 2, RES_PITCH2D = 3;
/** Live texture plus surface objects per session: the handles are cheap but not free. */
const MAX_OBJECTS = 65536;

interface ArrayRec { width: number; height: number; depth: number; format: number; channels: number; flags: number; bytes: number }
interface State { arrays: Map<number, ArrayRec>; objects: Set<string> }
const states = new WeakMap<Session, State>();
function state(s: Session): State {
  let st = states.get(s);
  if (!st) { st = { arrays: new Map(), objects: new Set() }; states.set(s, st); }
  return st;
}

function bad(msg: string): never {
  throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, msg);
}

function elemBytes(format: number, channels: number, what: string): number {
  const cs = FORMAT_BYTES[format];
  if (!cs) throw new CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED, `${what}: array format 0x${format.toString(16)} is not supported`);
  if (channels !== 1 && channels !== 2 && channels !== 4) bad(`${what}: ${channels} channels (1, 2 or 4)`);
  return cs * channels;
}

/** A non-negative safe integer from a msgpack field (u64 may arrive as a bigint). */
function uint(v: unknown, what: string): number {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) bad(`${what} must be a non-negative integer`);
  return n;
}

function field(m: unknown, key: string, what: string): unknown {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) bad(`${what} must be a map`);
  return (m as Record<string, unknown>)[key];
}

function handleOf(v: unknown, what: string): number {
  const h = uint(v, `${what} handle`);
  if (h === 0) bad(`${what} handle 0 is reserved`);
  return h;
}

/** The memory behind a resource map, checked to lie inside the session's allocations. */
function resource(s: Session, m: unknown, what: string): TextureResource {
  const type = uint(field(m, 'type', what), `${what} type`);
  if (type === RES_ARRAY) {
    const addr = uint(field(m, 'array', what), `${what} array`);
    const a = state(s).arrays.get(addr);
    if (!a) throw new CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE, `${what}: 0x${addr.toString(16)} is not a CUDA array of this session`);
    s.checkRange(addr, a.bytes, what);
    return { type, addr, format: a.format, channels: a.channels, width: a.width, height: a.height, depth: a.depth, flags: a.flags, pitch: 0, size: 0 };
  }
  if (type === RES_MIPMAPPED) throw new CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED, `${what}: mipmapped arrays are not supported`);
  if (type !== RES_LINEAR && type !== RES_PITCH2D) bad(`${what}: resource type ${type}`);
  const addr = uint(field(m, 'addr', what), `${what} addr`);
  const format = uint(field(m, 'format', what), `${what} format`);
  const channels = uint(field(m, 'channels', what), `${what} channels`);
  const es = elemBytes(format, channels, what);
  if (type === RES_LINEAR) {
    const size = uint(field(m, 'size', what), `${what} size`);
    if (size < es) bad(`${what}: linear resource of ${size} bytes holds no element`);
    s.checkRange(addr, size, what);
    return { type, addr, format, channels, width: 0, height: 0, depth: 0, flags: 0, pitch: 0, size };
  }
  const width = uint(field(m, 'width', what), `${what} width`);
  const height = uint(field(m, 'height', what), `${what} height`);
  const pitch = uint(field(m, 'pitch', what), `${what} pitch`);
  if (width === 0 || height === 0) bad(`${what}: pitch2D extent must be positive`);
  s.checkRange2D(addr, pitch, width * es, height, what);
  return { type, addr, format, channels, width, height, depth: 0, flags: 0, pitch, size: 0 };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function textureDesc(m: unknown): TextureDesc {
  const am = field(m, 'address', 'texture descriptor');
  if (!Array.isArray(am) || am.length !== 3) bad('texture descriptor: address must hold 3 modes');
  const border = field(m, 'border', 'texture descriptor') ?? [0, 0, 0, 0];
  if (!Array.isArray(border) || border.length !== 4) bad('texture descriptor: border must hold 4 colours');
  return {
    addressMode: am.map((v) => uint(v, 'address mode')) as TextureDesc['addressMode'],
    filterMode: uint(field(m, 'filter', 'texture descriptor') ?? 0, 'filter mode'),
    flags: uint(field(m, 'flags', 'texture descriptor') ?? 0, 'texture flags'),
    borderColor: border.map((b) => { u32[0] = uint(b, 'border colour'); return f32[0]; }) as TextureDesc['borderColor'],
  };
}

function addObject(s: Session, key: string): void {
  const objs = state(s).objects;
  if (objs.has(key)) bad(`${key} is already in use`);
  if (objs.size >= MAX_OBJECTS) throw new CudaError(CUresult.CUDA_ERROR_OUT_OF_MEMORY, `more than ${MAX_OBJECTS} texture and surface objects`);
  objs.add(key);
}

function dropObject(s: Session, key: string): void {
  if (!state(s).objects.delete(key)) throw new CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE, `${key} is not a live object of this session`);
}

function unsupported(what: string): never {
  throw new CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED, `${what} is not supported by this server's device`);
}

export const textureHandlers: HandlerTable = {
  ARRAY_CREATE(f, s) {
    const a = decodeArrayCreateArgs(f.body);
    const es = elemBytes(a.format, a.channels, 'ARRAY_CREATE');
    if (a.width === 0 || (a.height === 0 && a.depth !== 0 && (a.flags & 1) === 0)) bad('ARRAY_CREATE: width must be positive, and a 3D array needs a height');
    const bytes = a.width * Math.max(a.height, 1) * Math.max(a.depth, 1) * es;
    if (!Number.isSafeInteger(bytes)) bad('ARRAY_CREATE: extent too large');
    s.alloc(a.addr, bytes);
    state(s).arrays.set(a.addr, { width: a.width, height: a.height, depth: a.depth, format: a.format, channels: a.channels, flags: a.flags, bytes });
  },

  ARRAY_DESTROY(f, s) {
    const { addr } = decodeArrayDestroyArgs(f.body);
    const st = state(s);
    if (!st.arrays.has(addr)) throw new CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE, `0x${addr.toString(16)} is not a CUDA array of this session`);
    st.arrays.delete(addr);
    s.free(addr);
  },

  TEXOBJ_CREATE(f, s) {
    const a = unpackArgs(f.op, f.body, f.seq);
    const h = handleOf(a.handle, 'TEXOBJ_CREATE');
    if (a.view !== null && a.view !== undefined) throw new CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED, 'texture resource views are not supported');
    const res = resource(s, a.resource, 'TEXOBJ_CREATE resource');
    const desc = textureDesc(a.texture);
    if (!s.ctx.createTexObject) unsupported('TEXOBJ_CREATE');
    addObject(s, `texture ${h}`);
    try {
      s.ctx.createTexObject(h, res, desc);
    } catch (e) {
      dropObject(s, `texture ${h}`);
      throw e;
    }
  },

  TEXOBJ_DESTROY(f, s) {
    const { handle } = decodeTexobjDestroyArgs(f.body);
    if (!s.ctx.destroyTexObject) unsupported('TEXOBJ_DESTROY');
    dropObject(s, `texture ${handle}`);
    s.ctx.destroyTexObject(handle);
  },

  SURFOBJ_CREATE(f, s) {
    const a = unpackArgs(f.op, f.body, f.seq);
    const h = handleOf(a.handle, 'SURFOBJ_CREATE');
    const res = resource(s, a.resource, 'SURFOBJ_CREATE resource');
    if (res.type !== RES_ARRAY) bad('SURFOBJ_CREATE: a surface needs a CUDA array');
    if (!s.ctx.createSurfObject) unsupported('SURFOBJ_CREATE');
    addObject(s, `surface ${h}`);
    try {
      s.ctx.createSurfObject(h, res);
    } catch (e) {
      dropObject(s, `surface ${h}`);
      throw e;
    }
  },

  SURFOBJ_DESTROY(f, s) {
    const { handle } = decodeSurfobjDestroyArgs(f.body);
    if (!s.ctx.destroySurfObject) unsupported('SURFOBJ_DESTROY');
    dropObject(s, `surface ${handle}`);
    s.ctx.destroySurfObject(handle);
  },
};
