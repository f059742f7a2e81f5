// Fatbin parsing: split a fatbin blob (as the client serialises it at cuLibraryLoadData / cuModuleLoadData
// time) into its PTX and ELF images, decompressed.
//
// Layout (facts: /work/shared/facts/cudart-shim.md §3.3-3.5):
//   fatbin header, 16 bytes: u32 magic 0xBA55ED50, u16 version, u16 header_size, u64 files_size
//   then entries, each: u16 kind (1 PTX, 2 ELF), u16 fmt, u32 header_size, u64 size (payload bytes, padded),
//     u32 compressed_size @16, u16 minor @24, u16 major @26, u32 arch @28, u64 flags @40,
//     u64 uncompressed_size @56; payload at entry + header_size; next entry at entry + header_size + size.
//   flags 0x8000: zstd frame; 0x2000: LZ4 block. PTX payloads end in NUL padding (compressed: one NUL counted
//   in uncompressed_size).
// A v2 wrapper's blob is several fatbins back to back (the main one, then the prelinked ones).
//
// This parses untrusted client input on the server, so every offset and size is checked before use and every
// failure is a FatbinError with a message naming the entry; sizes are capped before anything is allocated.

import { decompress as fzstdDecompress } from 'fzstd';
import { lz4DecodeBlock } from './lz4';

// zstd: the reference libzstd decoder compiled to WebAssembly (zstddec) checks every sequence against the
// output size, so a malformed frame fails in time proportional to its size. fzstd (pure JS) does not: a
// mutated 419-byte PTX frame kept it busy for 1.6 s writing past its output, and a 20,000-case fuzz run did
// not finish in 10 minutes, which would let one client stall the server. The wasm module can only be
// instantiated asynchronously, so fzstd decodes until it is ready; servers await `fatbinReady` at start-up.
// zstddec is an ES module: `require` works from Node 20.19 on; on older Node fzstd stays in use.
let wasmZstd: { decode(src: Uint8Array, size: number): Uint8Array } | undefined;
/** Resolves once the checked zstd decoder is in use (or known to be unavailable); await it before serving. */
export const fatbinReady: Promise<void> = (async () => {
  try {
    const { ZSTDDecoder } = require('zstddec') as typeof import('zstddec');
    const decoder = new ZSTDDecoder();
    await decoder.init();
    wasmZstd = decoder;
  } catch {
    // Keep fzstd (see above); nothing else depends on the wasm decoder.
  }
})();

export interface FatbinImage {
  kind: 'ptx' | 'elf';
  /** SM number (75, 90, ...): the virtual arch for PTX, the real one for ELF. */
  arch: number;
  /** Decompressed payload; PTX text without trailing NULs. */
  data: Uint8Array;
}

export class FatbinError extends Error {
  readonly code = 'RGPU_ERR_FATBIN';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FatbinError';
  }
}

export const FATBIN_MAGIC = 0xba55ed50;
/** `__fatBinC_Wrapper_t` magic: the client should have resolved the wrapper's pointers before sending. */
export const FATBIN_WRAPPER_MAGIC = 0x466243b1;
const FATBIN_HEADER_SIZE = 16;
const ENTRY_HEADER_MIN = 64;
const KIND_PTX = 1;
const KIND_ELF = 2;
const FLAG_LZ4 = 0x2000;
const FLAG_ZSTD = 0x8000;

/** Largest decompressed image we accept: far above any real kernel image, well below what hurts a server. */
export const MAX_IMAGE_BYTES = 256 * 1024 * 1024;

/** What a module image is, from its first bytes. */
export function sniffImage(buf: Uint8Array): 'fatbin' | 'ptx' | 'cubin' | 'unknown' {
  if (buf.length >= 4) {
    const magic = (buf[0] | (buf[1] << 8) | (buf[2] << 16) | (buf[3] << 24)) >>> 0;
    if (magic === FATBIN_MAGIC) return 'fatbin';
    if (buf[0] === 0x7f && buf[1] === 0x45 && buf[2] === 0x4c && buf[3] === 0x46) return 'cubin';
  }
  // PTX is text whose first directive (after comments and blank lines) is `.version`.
  const head = new TextDecoder('latin1').decode(buf.subarray(0, 4096));
  const stripped = head.replace(/\/\/[^\n]*\n?|\/\*[\s\S]*?\*\/|\s+/g, '');
  return stripped.startsWith('.version') ? 'ptx' : 'unknown';
}

/** Every image of every fatbin in `buf`, in order. Throws FatbinError on any malformation. */
export function extractImages(buf: Uint8Array): FatbinImage[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const images: FatbinImage[] = [];
  let off = 0;
  let count = 0;
  while (off < buf.length) {
    // Producers may 8-align fatbins placed back to back; zero padding between them is allowed.
    if (count > 0 && buf[off] === 0) {
      off++;
      continue;
    }
    if (buf.length - off < FATBIN_HEADER_SIZE) throw new FatbinError(`fatbin #${count} at ${off}: truncated header`);
    const magic = view.getUint32(off, true);
    if (magic !== FATBIN_MAGIC) {
      const what = magic === FATBIN_WRAPPER_MAGIC ? ' (a __fatBinC_Wrapper_t, not a fatbin)' : '';
      throw new FatbinError(`fatbin #${count} at ${off}: bad magic 0x${magic.toString(16)}${what}`);
    }
    const headerSize = view.getUint16(off + 6, true);
    const filesSize = readU64(view, off + 8);
    if (headerSize < FATBIN_HEADER_SIZE || headerSize > buf.length - off) {
      throw new FatbinError(`fatbin #${count} at ${off}: bad header size ${headerSize}`);
    }
    const start = off + headerSize;
    if (filesSize > buf.length - start) {
      throw new FatbinError(`fatbin #${count} at ${off}: ${filesSize} bytes of entries, only ${buf.length - start} present`);
    }
    parseEntries(buf, view, start, start + filesSize, count, images);
    off = start + filesSize;
    count++;
  }
  if (count === 0) throw new FatbinError('empty fatbin blob');
  return images;
}

/** The PTX image to JIT for an SM: the highest PTX arch <= smArch, else the lowest one available. */
export function choosePtx(images: FatbinImage[], smArch: number): FatbinImage | undefined {
  let best: FatbinImage | undefined;
  let lowest: FatbinImage | undefined;
  for (const im of images) {
    if (im.kind !== 'ptx') continue;
    if (im.arch <= smArch && (!best || im.arch > best.arch)) best = im;
    if (!lowest || im.arch < lowest.arch) lowest = im;
  }
  return best ?? lowest;
}

function parseEntries(buf: Uint8Array, view: DataView, off: number, end: number, fb: number, out: FatbinImage[]): void {
  for (let i = 0; off < end; i++) {
    const where = `fatbin #${fb} entry #${i} at ${off}`;
    if (end - off < ENTRY_HEADER_MIN) throw new FatbinError(`${where}: truncated entry header`);
    const kind = view.getUint16(off, true);
    const headerSize = view.getUint32(off + 4, true);
    const size = readU64(view, off + 8);
    const compressedSize = view.getUint32(off + 16, true);
    const arch = view.getUint32(off + 28, true);
    const flags = view.getUint32(off + 40, true); // every known flag is in the low word
    const uncompressedSize = readU64(view, off + 56);
    // headerSize >= 64 guarantees progress, so a crafted blob cannot loop forever.
    if (headerSize < ENTRY_HEADER_MIN || headerSize > end - off) throw new FatbinError(`${where}: bad entry header size ${headerSize}`);
    const payload = off + headerSize;
    if (size > end - payload) throw new FatbinError(`${where}: payload of ${size} bytes overruns the fatbin`);
    off = payload + size;
    // Other kinds (e.g. LTO IR with -dlto) are not loadable images here; skip them.
    if (kind !== KIND_PTX && kind !== KIND_ELF) continue;
    let data = decodePayload(buf.subarray(payload, payload + size), flags, compressedSize, uncompressedSize, where);
    if (kind === KIND_PTX) {
      let n = data.length;
      while (n > 0 && data[n - 1] === 0) n--;
      data = data.subarray(0, n);
    }
    out.push({ kind: kind === KIND_PTX ? 'ptx' : 'elf', arch, data });
  }
}

function decodePayload(raw: Uint8Array, flags: number, compressedSize: number, uncompressedSize: number, where: string): Uint8Array {
  const zstd = (flags & FLAG_ZSTD) !== 0;
  const lz4 = (flags & FLAG_LZ4) !== 0;
  // Copy uncompressed payloads so images never alias (and pin) the client's receive buffer.
  if (!zstd && !lz4) return raw.slice();
  if (zstd && lz4) throw new FatbinError(`${where}: both zstd and LZ4 flags set`);
  if (compressedSize === 0 || compressedSize > raw.length) {
    throw new FatbinError(`${where}: compressed size ${compressedSize} does not fit the ${raw.length}-byte payload`);
  }
  if (uncompressedSize === 0 || uncompressedSize > MAX_IMAGE_BYTES) {
    throw new FatbinError(`${where}: uncompressed size ${uncompressedSize} outside 1..${MAX_IMAGE_BYTES}`);
  }
  const src = raw.subarray(0, compressedSize);
  try {
    if (lz4) return lz4DecodeBlock(src, uncompressedSize);
    checkZstdContentSize(src, uncompressedSize, where);
    if (wasmZstd) {
      // zstddec returns an empty or short array when libzstd reports an error.
      const out = wasmZstd.decode(src, uncompressedSize);
      if (out.length !== uncompressedSize) throw new FatbinError(`${where}: zstd payload is corrupt`);
      return out;
    }
    // Passing the output buffer keeps fzstd from allocating what the (untrusted) frame header asks for.
    return fzstdDecompress(src, new Uint8Array(uncompressedSize));
  } catch (e) {
    if (e instanceof FatbinError) throw e;
    throw new FatbinError(`${where}: ${lz4 ? 'LZ4' : 'zstd'} payload is corrupt: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * fzstd silently truncates output that does not fit the buffer it is given, so compare the frame's declared
 * content size (when present) with the entry header's.
 */
function checkZstdContentSize(src: Uint8Array, expected: number, where: string): void {
  if (src.length < 6 || src[0] !== 0x28 || src[1] !== 0xb5 || src[2] !== 0x2f || src[3] !== 0xfd) {
    throw new FatbinError(`${where}: zstd payload lacks the frame magic`);
  }
  const fhd = src[4];
  const singleSegment = (fhd >> 5) & 1;
  const fcsFlag = fhd >> 6;
  const fcsBytes = fcsFlag ? 1 << fcsFlag : singleSegment;
  if (fcsBytes === 0) return;
  const dictBytes = [0, 1, 2, 4][fhd & 3];
  const at = 5 + (singleSegment ? 0 : 1) + dictBytes;
  if (src.length < at + fcsBytes) throw new FatbinError(`${where}: truncated zstd frame header`);
  let fcs = 0;
  for (let i = fcsBytes - 1; i >= 0; i--) fcs = fcs * 256 + src[at + i];
  if (fcsBytes === 2) fcs += 256;
  if (fcs !== expected) throw new FatbinError(`${where}: zstd frame holds ${fcs} bytes, entry header says ${expected}`);
}

/** u64 as a JS number; values past 2^53 are reported as Infinity so every size check fails cleanly. */
function readU64(view: DataView, off: number): number {
  const lo = view.getUint32(off, true);
  const hi = view.getUint32(off + 4, true);
  return hi >= 0x200000 ? Infinity : hi * 0x100000000 + lo;
}
