import * as assert from 'node:assert/strict';
import { RingBuffer } from '../../extension/src/common/ringBuffer';
import { StatsHistory } from '../../extension/src/panel/statsHistory';

describe('extension RingBuffer', () => {
  it('keeps insertion order until full', () => {
    const r = new RingBuffer(4);
    [1, 2, 3].forEach((v) => r.push(v));
    assert.deepEqual(r.toArray(), [1, 2, 3]);
    assert.equal(r.last(), 3);
    assert.ok(Number.isNaN(r.at(3)));
  });

  it('drops the oldest when full and stays bounded', () => {
    const r = new RingBuffer(3);
    for (let i = 1; i <= 10000; i++) r.push(i);
    assert.equal(r.length, 3);
    assert.deepEqual(r.toArray(), [9998, 9999, 10000]);
    assert.equal(r.at(0), 9998);
  });

  it('reuses the array it is given', () => {
    const r = new RingBuffer(2);
    r.push(5); r.push(6); r.push(7);
    const into = [0, 0, 0, 0];
    assert.equal(r.toArray(into), into);
    assert.deepEqual(into, [6, 7]);
  });

  it('rejects a non-positive capacity', () => {
    assert.throws(() => new RingBuffer(0), RangeError);
    assert.throws(() => new RingBuffer(1.5), RangeError);
  });

  it('StatsHistory holds the last N samples column-wise', () => {
    const h = new StatsHistory(5);
    for (let i = 0; i < 12; i++) h.push({ t: i * 1000, h2d: i, d2h: 2 * i, ops: 3 * i, p50: 0.1 * i, p99: 0.2 * i, queue: i % 2 });
    const s = h.samples();
    assert.equal(s.length, 5);
    assert.deepEqual(s.map((x) => x.t), [7000, 8000, 9000, 10000, 11000]);
    assert.equal(s[4].d2h, 22);
    assert.equal(s[0].queue, 1);
  });
});
