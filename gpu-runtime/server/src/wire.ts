// MessagePack values for u64 fields: msgpackr writes integers above 2^32 as float64, which C decoders
// handle poorly; a BigInt is written as a 64-bit integer instead.
export const wireU64 = (n: number): number | bigint => (n > 0xffffffff ? BigInt(n) : n);
