// Shared heap windows (block workers on) are recycled between contexts: a process that creates and destroys
// many sessions keeps forking, and a recycled window shows the next tenant nothing of the last one.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { Backend } from '../../../gpu-runtime/server/src/backend';
import { createEmulatedBackend } from '../../../gpu-runtime/emulator/src/index';

describe('emulator: shared heap windows are recycled', () => {
  let be: Backend;
  before(() => { be = createEmulatedBackend([{ type: 'T4', count: 1 }], { workers: 2 }); });
  after(async () => be.close());

  it('many contexts created and destroyed in a row leave the process able to spawn', () => {
    const dev = be.devices[0];
    for (let i = 0; i < 12; i++) {
      const c = dev.createContext({ vaSize: 4 * 2 ** 30 });
      c.alloc(c.va.base, 1 << 20);
      c.enqueueWrite(null, c.va.base, new Uint8Array(1 << 20).fill(i + 1));
      c.destroy();
    }
    const r = spawnSync('true');
    assert.equal(r.error, undefined, `spawn after 12 contexts: ${r.error?.message}`);
    assert.equal(r.status, 0);
  });

  it('a recycled window reads as zero to the next context, up to the end of each allocation\'s last page', async () => {
    const dev = be.devices[0];
    const a = dev.createContext({ vaSize: 4 * 2 ** 30 });
    const base = a.va.base;
    a.alloc(base, 8192);
    a.enqueueWrite(null, base, new Uint8Array(8192).fill(0xab));
    a.destroy();
    const b = dev.createContext({ vaSize: 4 * 2 ** 30 });
    try {
      assert.equal(b.va.base, base, 'the next context gets the same slot, so the same offsets in the window');
      b.alloc(base, 100); // one page: the page map lets kernels touch all 256 bytes of it
      const page = new Uint8Array(256).fill(0xff);
      await b.enqueueRead(null, base, page);
      assert.ok(page.every((x) => x === 0), 'the rest of the page is not the last tenant\'s');
      b.alloc(base + 4096, 4096);
      const more = new Uint8Array(4096).fill(0xff);
      await b.enqueueRead(null, base + 4096, more);
      assert.ok(more.every((x) => x === 0));
    } finally {
      b.destroy();
    }
  });
});
