// Pure: the quick-pick items of "Switch GPU Type…" built from the pool's inventory.
import { formatBytes } from '../common/format';
import type { Inventory } from '../proxy/protocol';

export interface GpuPickItem {
  label: string;
  description: string;
  detail: string;
  type: string;
  picked?: boolean;
}

export function gpuPickItems(inv: Inventory, current: string): GpuPickItem[] {
  const items = inv.types.map((t): GpuPickItem => {
    const busy = t.free === 0;
    const queue = t.queued > 0 ? ` · ${t.queued} queued` : busy ? ' · all in use: new sessions wait' : '';
    return {
      label: `${t.type === current ? '$(check) ' : ''}${t.type}`,
      description: `${t.name} · ${formatBytes(t.memory)}`,
      detail: `${t.free}/${t.total} free${queue}`,
      type: t.type,
      picked: t.type === current,
    };
  });
  // Free GPUs first, then by shortest queue; the current type stays where it falls so the list does not jump.
  return items.sort((a, b) => rank(inv, a.type) - rank(inv, b.type) || a.type.localeCompare(b.type));
}

function rank(inv: Inventory, type: string): number {
  const t = inv.types.find((x) => x.type === type)!;
  return t.free > 0 ? 0 : 1 + t.queued;
}

/** Whether switching needs the user's consent: a running kernel holds device memory that cannot move. */
export function switchNeedsRestart(current: string, next: string, runningKernels: number): boolean {
  return next !== current && runningKernels > 0;
}
