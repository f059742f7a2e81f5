// The worker backend's split of a worker's stdout into per-sync printf text.
import { strict as assert } from 'node:assert';
import { PrintfSplitter, printfMarker } from '../../../gpu-runtime/cuda/src/workerProtocol';

describe('cuda worker: printf splitter', () => {
  const M = printfMarker('00ff');
  function run(chunks: (string | Buffer)[]): { events: string[] } {
    const events: string[] = [];
    const s = new PrintfSplitter(M, (t) => events.push(`text:${t}`), () => events.push(`marker:${s.markers}`));
    for (const c of chunks) s.push(typeof c === 'string' ? Buffer.from(c, 'utf8') : c);
    return { events };
  }

  it('gives the text before each marker, then the marker, in order; text after the last marker waits', () => {
    assert.deepEqual(run([`a\nb\n${M}${M}c\n${M}tail`]).events, ['text:a\nb\n', 'marker:1', 'marker:2', 'text:c\n', 'marker:3']);
  });

  it('finds a marker split across chunks, and multi-byte characters split across chunks', () => {
    const text = Buffer.from(`héllo ✓\n${M}`, 'utf8');
    const chunks: Buffer[] = [];
    for (let i = 0; i < text.length; i += 3) chunks.push(text.subarray(i, i + 3));
    assert.deepEqual(run(chunks).events, ['text:héllo ✓\n', 'marker:1']);
  });

  it('hands on text early when a session prints a lot without synchronising, never cutting a marker', () => {
    const big = 'x'.repeat(PrintfSplitter.MAX_PENDING + 10);
    const half = M.slice(0, 5);
    const { events } = run([big + half, M.slice(5) + 'y']);
    const texts = events.filter((e) => e.startsWith('text:')).map((e) => e.slice(5));
    assert.equal(texts.join(''), big);
    assert.deepEqual(events.filter((e) => e.startsWith('marker')), ['marker:1']);
    assert.ok(texts[0].length <= big.length, 'the partial marker was kept back');
  });
});
