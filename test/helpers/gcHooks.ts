// A mocha root hook for the whole suite (.mocharc.json: `require`, with node's --expose-gc). Emulated
// contexts map their device heap as a SharedArrayBuffer window, and V8 unmaps a dead one only at some later
// major GC. Hundreds of tests create contexts in this one process, so dead windows pile up as committed
// memory (17 GB measured before one heap test), and once that nears the machine's RAM, fork() fails with
// ENOMEM for every later test that spawns a program. A server recycles its windows; a test process full of
// short-lived devices needs a collection now and then, which this makes when the committed size warrants it.
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';

/** Collect once the process's writable private memory passes this share of the machine's RAM. */
const SHARE = 0.25;

function committedBytes(): number {
  const m = /VmData:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

const gc = (globalThis as { gc?: () => void }).gc;

export const mochaHooks = {
  afterEach(): void {
    if (gc && committedBytes() > SHARE * totalmem()) gc();
  },
};
