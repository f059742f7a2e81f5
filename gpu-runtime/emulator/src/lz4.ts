// LZ4 *block* decoder (no frame header, no checksums) for fatbin entries compressed with flag 0x2000
// (`nvcc -Xfatbin -compress-mode=speed`).
//
// Why hand-written: the npm options do not fit a server that parses untrusted client input.
// - `lz4js.decompressBlock` does no bounds checking: a crafted block reads past the input (undefined -> NaN)
//   and silently drops out-of-range writes instead of failing.
// - `lz4-napi` is a native addon (per-platform prebuilt binaries) whose decoder expects lz4_flex's
//   size-prepended framing, not the raw block with an externally known size that fatbins store.
// - `lz4` (node-lz4) drags in a stream stack and its `decodeBlock` reports errors as negative offsets.
// The block format is tiny (a token, literal run, 16-bit offset, match run), so a checked decoder is ~50 lines.

export class Lz4Error extends Error {
  readonly code = 'RGPU_ERR_LZ4';
  constructor(message: string) {
    super(message);
    this.name = 'Lz4Error';
  }
}

/**
 * Decodes one LZ4 block `src` whose decompressed size is exactly `outSize`. Every read and write is checked;
 * malformed input throws Lz4Error. Runs in O(src.length + outSize).
 */
export function lz4DecodeBlock(src: Uint8Array, outSize: number): Uint8Array {
  const dst = new Uint8Array(outSize);
  let s = 0;
  let d = 0;
  const sEnd = src.length;
  while (s < sEnd) {
    const token = src[s++];
    // Literal run: 4-bit length, extended by 255-bytes while the extension byte is 255.
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (s >= sEnd) throw new Lz4Error('truncated literal length');
        b = src[s++];
        lit += b;
      } while (b === 255);
    }
    if (lit > sEnd - s) throw new Lz4Error(`literal run of ${lit} bytes overruns the input at ${s}`);
    if (lit > outSize - d) throw new Lz4Error(`literal run of ${lit} bytes overruns the ${outSize}-byte output`);
    dst.set(src.subarray(s, s + lit), d);
    s += lit;
    d += lit;
    // The last sequence of a block has literals only.
    if (s === sEnd) break;
    if (sEnd - s < 2) throw new Lz4Error('truncated match offset');
    const offset = src[s] | (src[s + 1] << 8);
    s += 2;
    if (offset === 0 || offset > d) throw new Lz4Error(`match offset ${offset} points before the output start`);
    let len = (token & 15) + 4;
    if ((token & 15) === 15) {
      let b: number;
      do {
        if (s >= sEnd) throw new Lz4Error('truncated match length');
        b = src[s++];
        len += b;
      } while (b === 255);
    }
    if (len > outSize - d) throw new Lz4Error(`match of ${len} bytes overruns the ${outSize}-byte output`);
    // Matches may overlap their own output (offset < len: run-length style), so copy forwards byte by byte
    // when they do; copyWithin is only correct for non-overlapping ranges.
    let m = d - offset;
    if (offset >= len) {
      dst.copyWithin(d, m, m + len);
      d += len;
    } else {
      for (const end = d + len; d < end; ) dst[d++] = dst[m++];
    }
  }
  if (d !== outSize) throw new Lz4Error(`block decoded to ${d} bytes, expected ${outSize}`);
  return dst;
}
