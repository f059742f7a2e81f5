// Device addresses and sizes travel as little-endian u64 but are JS numbers on the TS side: every CUDA
// virtual address fits in 48 bits, and numbers are ~4x cheaper than BigInt on the hot path.
const TWO32 = 0x1_0000_0000;

/** Reads a u64; throws RangeError when the value exceeds 2^53 (never a valid address or size here). */
export function readU64(b: Buffer, o: number): number {
  const lo = b.readUInt32LE(o), hi = b.readUInt32LE(o + 4);
  if (hi > 0x1fffff) throw new RangeError(`u64 at offset ${o} exceeds 2^53`);
  return hi * TWO32 + lo;
}

export function writeU64(b: Buffer, o: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not a u64: ${v}`);
  b.writeUInt32LE(v % TWO32, o);
  b.writeUInt32LE(Math.floor(v / TWO32), o + 4);
}
