// A session's device address window on a real GPU: the client picks allocation addresses inside it (contract:
// docs/contracts.md "Handles"), so we reserve the window with cuMemAddressReserve and back each allocation with
// physical memory mapped exactly where the client put it (cuMemCreate + cuMemMap + cuMemSetAccess).
//
// Physical memory comes in granules (2 MiB on current GPUs) while client allocations are 256-byte aligned, so
// neighbouring allocations can share a granule. Each allocation maps the granules it covers that are not mapped
// yet, as ONE mapping (interior granules cannot belong to anyone else); a mapping is released when the last
// allocation that touches it is freed.

import { CudaError } from '../../server/src/backend';
import { RangeTable } from '../../server/src/ranges';
import { Driver } from './binding';

const CU_MEM_ALLOCATION_TYPE_PINNED = 1;
const CU_MEM_LOCATION_TYPE_DEVICE = 1;
const CU_MEM_ALLOC_GRANULARITY_MINIMUM = 0;
const CU_MEM_ACCESS_FLAGS_PROT_READWRITE = 3;
const CUDA_ERROR_INVALID_VALUE = 1;
const CUDA_ERROR_OUT_OF_MEMORY = 2;
const CUDA_ERROR_NOT_SUPPORTED = 801;

interface Mapping {
  start: number;
  size: number;
  handle: bigint;
  /** Allocations touching this mapping. */
  users: number;
}

interface Allocation {
  size: number;
  mappings: Mapping[];
}

export class VaWindow {
  readonly base: number;
  readonly size: number;
  readonly granule: number;
  /** Bytes of physical memory currently mapped. */
  mappedBytes = 0;
  /** The window is one cuMemAlloc block (driver without VMM): alloc and free only keep the books. */
  readonly whole: boolean = false;
  private readonly prop = Buffer.alloc(32); // CUmemAllocationProp
  private readonly access = Buffer.alloc(12); // CUmemAccessDesc
  private readonly allocs = new Map<number, Allocation>();
  /** The same allocations as sorted ranges: overlap and copy-range checks are one binary search. */
  private readonly ranges = new RangeTable();
  /** Mapping owning each mapped granule, by granule index within the window. */
  private readonly granuleOwner = new Map<number, Mapping>();

  constructor(private readonly drv: Driver, device: number, size: number) {
    this.prop.writeUInt32LE(CU_MEM_ALLOCATION_TYPE_PINNED, 0);
    this.prop.writeUInt32LE(CU_MEM_LOCATION_TYPE_DEVICE, 8);
    this.prop.writeInt32LE(device, 12);
    this.access.writeUInt32LE(CU_MEM_LOCATION_TYPE_DEVICE, 0);
    this.access.writeInt32LE(device, 4);
    this.access.writeUInt32LE(CU_MEM_ACCESS_FLAGS_PROT_READWRITE, 8);
    const f = drv.fn;
    const g = f.cuMemGetAllocationGranularity(drv.out, this.prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
    this.granule = (g === 0 && drv.readNum()) || 2 * 1024 * 1024;
    let windowSize = Math.ceil(size / this.granule) * this.granule;
    let rc = g === 0 ? f.cuMemAddressReserve(drv.out, windowSize, this.granule, 0, 0) : g;
    // A driver may have less address space to give than twice the quota (the intercept library reserves in a
    // window of its own): take the largest halving that it grants.
    while (rc === CUDA_ERROR_OUT_OF_MEMORY && windowSize > this.granule) {
      windowSize = Math.max(this.granule, Math.floor(windowSize / 2 / this.granule) * this.granule);
      rc = f.cuMemAddressReserve(drv.out, windowSize, this.granule, 0, 0);
    }
    if (rc === CUDA_ERROR_NOT_SUPPORTED) {
      // No virtual memory management (the intercept library, some virtualised drivers): the window becomes one
      // cuMemAlloc block, so every client address in it is backed from the start, at the cost of holding the
      // whole window's memory for the session's lifetime.
      windowSize = allocWhole(drv, windowSize, this.granule);
      this.whole = true;
      this.mappedBytes = windowSize;
    } else {
      drv.check(rc, g === 0 ? 'cuMemAddressReserve' : 'cuMemGetAllocationGranularity');
    }
    this.base = drv.readNum();
    this.size = windowSize;
  }

  /** Backs [addr, addr+size) with device memory. The range must lie in the window and overlap no allocation. */
  alloc(addr: number, size: number): void {
    if (!(size > 0) || addr < this.base || addr + size > this.base + this.size) {
      throw new CudaError(CUDA_ERROR_INVALID_VALUE, `allocation [0x${addr.toString(16)}, +${size}) outside the window`);
    }
    if (!this.ranges.add(addr, size)) throw new CudaError(CUDA_ERROR_INVALID_VALUE, `allocation at 0x${addr.toString(16)} overlaps another`);
    if (this.whole) {
      this.allocs.set(addr, { size, mappings: [] });
      return;
    }
    const first = Math.floor((addr - this.base) / this.granule);
    const last = Math.floor((addr + size - 1 - this.base) / this.granule);
    const used = new Set<Mapping>();
    // Granules already mapped can only be the first and last (shared with neighbours).
    for (const g of [first, last]) {
      const m = this.granuleOwner.get(g);
      if (m) used.add(m);
    }
    let lo = first;
    let hi = last;
    if (this.granuleOwner.has(lo)) lo++;
    if (hi >= lo && this.granuleOwner.has(hi)) hi--;
    if (hi >= lo) {
      try {
        used.add(this.map(lo, hi));
      } catch (e) {
        this.ranges.remove(addr);
        throw e;
      }
    }
    for (const m of used) m.users++;
    this.allocs.set(addr, { size, mappings: [...used] });
  }

  free(addr: number): void {
    const a = this.allocs.get(addr);
    if (!a) throw new CudaError(CUDA_ERROR_INVALID_VALUE, `no allocation at 0x${addr.toString(16)}`);
    this.allocs.delete(addr);
    this.ranges.remove(addr);
    for (const m of a.mappings) if (--m.users === 0) this.unmap(m);
  }

  /** true when [addr, addr+size) lies inside one live allocation. */
  contains(addr: number, size: number): boolean {
    return this.ranges.contains(addr, size);
  }

  /** Unmaps everything and gives the window back. Idempotent. */
  destroy(): void {
    const mappings = new Set(this.granuleOwner.values());
    for (const m of mappings) this.unmap(m);
    this.allocs.clear();
    this.ranges.clear();
    if (this.whole && this.base !== 0) {
      this.drv.fn.cuMemFree_v2(this.base);
      this.mappedBytes = 0;
    } else if (this.size > 0 && this.base !== 0) {
      this.drv.fn.cuMemAddressFree(this.base, this.size);
    }
    (this as { base: number }).base = 0;
  }

  private map(lo: number, hi: number): Mapping {
    const start = this.base + lo * this.granule;
    const size = (hi - lo + 1) * this.granule;
    const { drv } = this;
    const f = drv.fn;
    drv.check(f.cuMemCreate(drv.out, size, this.prop, 0), 'cuMemCreate');
    const handle = drv.readU64();
    let rc = f.cuMemMap(start, size, 0, handle, 0);
    if (rc === 0) {
      rc = f.cuMemSetAccess(start, size, this.access, 1);
      if (rc !== 0) f.cuMemUnmap(start, size);
    }
    if (rc !== 0) {
      f.cuMemRelease(handle);
      drv.check(rc, 'cuMemMap/cuMemSetAccess');
    }
    const m: Mapping = { start, size, handle, users: 0 };
    for (let g = lo; g <= hi; g++) this.granuleOwner.set(g, m);
    this.mappedBytes += size;
    return m;
  }

  private unmap(m: Mapping): void {
    const f = this.drv.fn;
    f.cuMemUnmap(m.start, m.size);
    f.cuMemRelease(m.handle);
    const lo = (m.start - this.base) / this.granule;
    for (let g = lo; g < lo + m.size / this.granule; g++) this.granuleOwner.delete(g);
    this.mappedBytes -= m.size;
  }
}

/**
 * cuMemAlloc of `size` bytes or, when that much cannot be had, of the largest power-of-two fraction of it (capped
 * at the free memory) that can: free memory is not one contiguous range (the intercept library, for one, reports
 * the device's free bytes but allocates within a smaller address window). The address is left in drv.out.
 * Returns the size obtained.
 */
function allocWhole(drv: Driver, size: number, granule: number): number {
  const f = drv.fn;
  let rc = f.cuMemAlloc_v2(drv.out, size);
  if (rc === CUDA_ERROR_OUT_OF_MEMORY) {
    drv.check(f.cuMemGetInfo_v2(drv.out.subarray(0, 8), drv.out.subarray(8, 16)), 'cuMemGetInfo');
    const free = Math.floor(drv.readNum() / granule) * granule;
    let want = Math.min(size, free);
    while (rc === CUDA_ERROR_OUT_OF_MEMORY && want >= granule) {
      rc = f.cuMemAlloc_v2(drv.out, want);
      if (rc === 0) size = want;
      else want = Math.floor(want / 2 / granule) * granule;
    }
  }
  drv.check(rc, 'cuMemAlloc (window without virtual memory management)');
  return size;
}
