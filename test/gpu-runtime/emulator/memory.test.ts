// DeviceHeap growth and clearing: the first allocation reserves the window without copying or touching it,
// new allocations read as zero even where freed ones were written, and globals survive growth.
import { strict as assert } from 'node:assert';
import { CudaError, CUresult } from '../../../gpu-runtime/server/src/backend';
import { DeviceHeap, GLOBAL_WINDOW } from '../../../gpu-runtime/emulator/src/memory';

const VA = 0x7f00_0000_0000 + GLOBAL_WINDOW;

describe('emulator: device heap', () => {
  it('reserves the whole window on first growth, keeping globals, and rejects ranges outside it', () => {
    const heap = new DeviceHeap(VA, 256 * 2 ** 20, () => {});
    const g = heap.allocGlobal(16, 4);
    heap.write(g, Buffer.from('global bytes kept'.slice(0, 16)));
    heap.alloc(VA + 2 ** 20, 4096);
    assert.equal(heap.length, GLOBAL_WINDOW + 256 * 2 ** 20);
    const out = Buffer.alloc(16);
    heap.read(g, out);
    assert.equal(out.toString(), 'global bytes kep');
    assert.throws(() => heap.alloc(VA + 256 * 2 ** 20, 256), (e: unknown) => e instanceof CudaError && e.code === CUresult.CUDA_ERROR_INVALID_VALUE);
    assert.throws(() => heap.read(VA + 2 ** 20 + 4000, Buffer.alloc(200)), (e: unknown) => e instanceof CudaError && e.code === CUresult.CUDA_ERROR_ILLEGAL_ADDRESS);
  });

  it('gives zeroed memory where a freed allocation was written, and only clears what was ever used', () => {
    const heap = new DeviceHeap(VA, 64 * 2 ** 20, () => {});
    const a = VA + 4096;
    heap.alloc(a, 8192);
    heap.write(a, Buffer.alloc(8192, 0xab));
    heap.free(a);
    heap.alloc(a - 256, 16384); // overlaps the old range and runs past it into never-used memory
    const out = Buffer.alloc(16384, 1);
    heap.read(a - 256, out);
    assert.ok(out.every((b) => b === 0), 'reallocated memory reads as zero');
    heap.memset(a, 7, 1, 16, 1, 16);
    heap.read(a, out.subarray(0, 16));
    assert.ok(out.subarray(0, 16).every((b) => b === 7));
  });

  it('tracks usage through alloc, free and releaseAll', () => {
    let used = 0;
    const heap = new DeviceHeap(VA, 64 * 2 ** 20, (d) => (used += d));
    heap.alloc(VA, 1000);
    heap.alloc(VA + 1024, 2000);
    assert.equal(used, 3000);
    heap.free(VA);
    assert.equal(used, 2000);
    heap.releaseAll();
    assert.equal(used, 0);
    assert.equal(heap.length, 0);
  });
});
