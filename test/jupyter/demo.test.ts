// `rgpu demo` (npm start) end to end is the same path as gpu.test.ts; here: its arguments and its summary.
import * as assert from 'node:assert/strict';
import { runDemo, summarizeStats } from '../../gpu-runtime/cli/src/demo';

async function quietly<T>(f: () => Promise<T>): Promise<{ value: T; text: string }> {
  const out = process.stdout.write, err = process.stderr.write;
  let text = '';
  process.stdout.write = process.stderr.write = ((s: string) => { text += s; return true; }) as typeof process.stdout.write;
  try {
    return { value: await f(), text };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

describe('jupyter: rgpu demo', () => {
  it('summarizes bytes each way, ops by count and round trips', () => {
    const s = summarizeStats({
      bytesToDevice: 562790, bytesFromDevice: 512,
      ops: { MEMCPY_HTOD: { count: 4 }, LAUNCH: { count: 9 }, HELLO: { count: 1 } },
      rtt: { p50Ms: 0.125, p99Ms: 2.5, samples: 30 },
    }, 0.75);
    assert.match(s, /to device\s+549\.6 KiB/);
    assert.match(s, /from device\s+512 B/);
    assert.match(s, /operations\s+14 \(LAUNCH 9, MEMCPY_HTOD 4, HELLO 1\)/);
    assert.match(s, /p50 0\.125 ms, p99 2\.500 ms \(30 samples\)/);
    assert.match(s, /ping\s+0\.750 ms/);
    assert.doesNotMatch(summarizeStats({}, undefined), /round trip|ping/);
  });

  it('rejects unknown options with usage (exit 2)', async () => {
    const { value, text } = await quietly(() => runDemo(['--frobnicate']));
    assert.equal(value, 2);
    assert.match(text, /usage: rgpu demo/);
  });

  it('fails (exit 1) on a notebook it cannot read, before starting anything', async () => {
    const { value, text } = await quietly(() => runDemo(['--notebook', '/nonexistent/nb.ipynb']));
    assert.equal(value, 1);
    assert.match(text, /failed: .*nonexistent/);
  });
});
