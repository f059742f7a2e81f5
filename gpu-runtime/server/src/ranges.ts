// The device-memory ranges one session may touch: its allocations (freed by MEM_FREE) and the globals of
// its modules. Kept as parallel sorted arrays so a copy's range check is one binary search and no
// allocation, since every copy, memset and launch-free memory op goes through it.

export class RangeTable {
  private starts: number[] = [];
  private ends: number[] = [];
  private total = 0;

  get count(): number {
    return this.starts.length;
  }

  /** Sum of the sizes of all ranges. */
  get bytes(): number {
    return this.total;
  }

  /** Index of the last range starting at or below addr, or -1. */
  private floor(addr: number): number {
    let lo = 0, hi = this.starts.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.starts[mid] <= addr) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /** Adds [addr, addr+size); false when it overlaps an existing range. */
  add(addr: number, size: number): boolean {
    const i = this.floor(addr);
    if (i >= 0 && this.ends[i] > addr) return false;
    const next = i + 1;
    if (next < this.starts.length && this.starts[next] < addr + size) return false;
    this.starts.splice(next, 0, addr);
    this.ends.splice(next, 0, addr + size);
    this.total += size;
    return true;
  }

  /** Removes the range that starts exactly at addr; returns its size, or -1 when there is none. */
  remove(addr: number): number {
    const i = this.floor(addr);
    if (i < 0 || this.starts[i] !== addr) return -1;
    const size = this.ends[i] - addr;
    this.starts.splice(i, 1);
    this.ends.splice(i, 1);
    this.total -= size;
    return size;
  }

  /**
   * True when [addr, addr+len) lies inside one range, or a run of ranges that touch end to end: virtual
   * memory mappings placed side by side in one reservation are one buffer to CUDA (len 0: always true, as
   * CUDA allows empty copies).
   */
  contains(addr: number, len: number): boolean {
    if (len === 0) return true;
    let i = this.floor(addr);
    if (i < 0 || addr >= this.ends[i]) return false;
    const end = addr + len;
    while (end > this.ends[i]) {
      if (i + 1 >= this.starts.length || this.starts[i + 1] !== this.ends[i]) return false;
      i++;
    }
    return true;
  }

  clear(): void {
    this.starts.length = 0;
    this.ends.length = 0;
    this.total = 0;
  }

  *entries(): IterableIterator<[number, number]> {
    for (let i = 0; i < this.starts.length; i++) yield [this.starts[i], this.ends[i] - this.starts[i]];
  }
}
