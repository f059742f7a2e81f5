// Test harness: compile CUDA source to PTX with nvcc (cached in the OS temp dir by source hash, since each
// nvcc call costs 1-2 s here) and drive an emulated context like the server does.

import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DeviceContext, ModuleInfo } from '../../../gpu-runtime/server/src/backend';
import { createEmulatedBackend } from '../../../gpu-runtime/emulator/src/index';

export function nvccPtx(source: string, flags: string[] = []): string {
  return nvccBuild(source, ['-ptx', ...flags], 'ptx').toString('utf8');
}

/** Runs nvcc with `flags` (which pick the output kind) once per source+flags; returns the output file. */
export function nvccBuild(source: string, flags: string[], ext: string): Buffer {
  const key = createHash('sha256').update(source).update(flags.join(' ')).digest('hex').slice(0, 24);
  const dir = path.join(os.tmpdir(), 'rgpu-emu-ptx');
  fs.mkdirSync(dir, { recursive: true });
  const out = path.join(dir, `${key}.${ext}`);
  if (!fs.existsSync(out)) {
    const src = path.join(dir, `${key}.cu`);
    fs.writeFileSync(src, source);
    execFileSync('nvcc', [...flags, src, '-o', out + '.tmp'], { stdio: 'pipe' });
    fs.renameSync(out + '.tmp', out);
  }
  return fs.readFileSync(out);
}

export function hasNvcc(): boolean {
  try { execFileSync('nvcc', ['--version'], { stdio: 'pipe' }); return true; } catch { return false; }
}

/** A context plus a bump allocator, as the client does it. */
export class Session {
  readonly ctx: DeviceContext;
  private next: number;
  printed = '';
  constructor(opts: { watchdogMs?: number; type?: string; workers?: number; splitMin?: number } = {}) {
    const be = createEmulatedBackend([{ type: opts.type ?? 'T4', count: 1 }], opts);
    this.ctx = be.devices[0].createContext({ vaSize: 1 << 30 });
    this.next = this.ctx.va.base;
  }
  alloc(bytes: number): number {
    const a = this.next;
    this.ctx.alloc(a, bytes);
    this.next += Math.ceil(bytes / 256) * 256 + 256;
    return a;
  }
  upload(data: ArrayBufferView): number {
    const a = this.alloc(data.byteLength);
    this.ctx.enqueueWrite(null, a, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return a;
  }
  async download<T extends ArrayBufferView>(addr: number, out: T): Promise<T> {
    await this.ctx.enqueueRead(null, addr, new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
    return out;
  }
  load(ptx: string): { handle: unknown; info: ModuleInfo } {
    return this.ctx.loadModule(Buffer.from(ptx), 'ptx', 'test');
  }
  launch(mod: { handle: unknown; info: ModuleInfo }, kernel: string, grid: number | [number, number, number], block: number | [number, number, number],
    args: (number | bigint | { f32: number } | { f64: number } | { i32: number })[], sharedMem = 0): void {
    const ki = mod.info.kernels.findIndex((k) => k.name === kernel || k.name.includes(kernel));
    if (ki < 0) throw new Error(`no kernel ${kernel}`);
    const k = mod.info.kernels[ki];
    const buf = new Uint8Array(Math.max(k.paramSize, 1));
    const dv = new DataView(buf.buffer);
    args.forEach((a, i) => {
      const { offset, size } = k.params[i];
      if (typeof a === 'number' || typeof a === 'bigint') {
        if (size === 8) dv.setBigUint64(offset, BigInt.asUintN(64, BigInt(a)), true);
        else if (size === 1) dv.setUint8(offset, Number(a) & 0xff);
        else if (size === 2) dv.setUint16(offset, Number(a) & 0xffff, true);
        else dv.setInt32(offset, Number(a), true);
      } else if ('f32' in a) dv.setFloat32(offset, a.f32, true);
      else if ('f64' in a) dv.setFloat64(offset, a.f64, true);
      else dv.setInt32(offset, a.i32, true);
    });
    const g = typeof grid === 'number' ? [grid, 1, 1] as [number, number, number] : grid;
    const b = typeof block === 'number' ? [block, 1, 1] as [number, number, number] : block;
    this.ctx.launch(null, mod.handle, ki, { grid: g, block: b, sharedMem, params: buf, cooperative: false }, (t) => { this.printed += t; });
  }
}
