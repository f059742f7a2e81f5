// Argument blocks the driver reads during a call: the launch `extra`/kernelParams block (native memory, built
// once per context so a launch allocates nothing) and CUDA_MEMCPY2D descriptors.

import { allocNative, NativeBuffer } from './binding';

const CU_LAUNCH_PARAM_BUFFER_POINTER = 1n;
const CU_LAUNCH_PARAM_BUFFER_SIZE = 2n;

/** Native memory for launch arguments: `extra` array, size slot, parameter bytes, kernelParams pointers. */
export class LaunchArgs {
  readonly native: NativeBuffer;
  readonly extraAddr: bigint;
  readonly paramsAddr: bigint;
  readonly pointersAddr: bigint;
  readonly params: Uint8Array;
  private readonly words: BigUint64Array;
  private static readonly PARAMS_AT = 64;
  private static readonly POINTERS_AT = 64 + 32768;

  constructor() {
    this.native = allocNative(LaunchArgs.POINTERS_AT + 8 * 8192);
    const { addr, bytes } = this.native;
    this.words = new BigUint64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
    this.extraAddr = addr;
    this.paramsAddr = addr + BigInt(LaunchArgs.PARAMS_AT);
    this.pointersAddr = addr + BigInt(LaunchArgs.POINTERS_AT);
    this.params = bytes.subarray(LaunchArgs.PARAMS_AT, LaunchArgs.POINTERS_AT);
    // extra = { BUFFER_POINTER, &params, BUFFER_SIZE, &size, END }, written once.
    this.words.set([CU_LAUNCH_PARAM_BUFFER_POINTER, this.paramsAddr, CU_LAUNCH_PARAM_BUFFER_SIZE, addr + 40n, 0n], 0);
  }

  private size = -1;

  setParams(p: Uint8Array): void {
    this.params.set(p);
    if (p.length !== this.size) {
      this.size = p.length;
      this.words[5] = BigInt(p.length);
    }
  }

  /** kernelParams[i] = &params[offset_i], for launches that take no `extra` (cooperative). */
  setPointers(offsets: readonly { offset: number }[]): void {
    const base = LaunchArgs.POINTERS_AT / 8;
    for (let i = 0; i < offsets.length; i++) this.words[base + i] = this.paramsAddr + BigInt(offsets[i].offset);
  }
}

/** A CUDA_MEMCPY2D (128 bytes); a fresh Buffer because the driver reads it during the call only, which is cheap. */
export function memcpy2D(srcType: number, srcHost: bigint, srcDevice: number, srcPitch: number,
  dstType: number, dstHost: bigint, dstDevice: number, dstPitch: number, width: number, height: number): Buffer {
  const b = Buffer.alloc(128);
  b.writeUInt32LE(srcType, 16);
  b.writeBigUInt64LE(srcHost, 24);
  b.writeBigUInt64LE(BigInt(srcDevice), 32);
  b.writeBigUInt64LE(BigInt(srcPitch), 48);
  b.writeUInt32LE(dstType, 72);
  b.writeBigUInt64LE(dstHost, 80);
  b.writeBigUInt64LE(BigInt(dstDevice), 88);
  b.writeBigUInt64LE(BigInt(dstPitch), 104);
  b.writeBigUInt64LE(BigInt(width), 112);
  b.writeBigUInt64LE(BigInt(height), 120);
  return b;
}
