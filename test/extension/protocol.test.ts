import * as assert from 'node:assert/strict';
import { BadMessageError } from '../../extension/src/common/errors';
import { formatBytes, formatMs } from '../../extension/src/common/format';
import { parseStats, parseStatus } from '../../extension/src/proxy/protocol';
import { mapIopub } from '../../extension/src/servers/outputs';

describe('extension protocol parsing and formatting', () => {
  it('normalises partial Stats and keeps per-op counters', () => {
    const s = parseStats({ t: 5, h2dBps: 'x', ops: { LAUNCH: { count: 3, bytes: 0, timeMs: 1.5 }, BAD: 7 }, rtt: { p50Ms: 0.3 } });
    assert.equal(s.h2dBps, 0);
    assert.deepEqual(s.ops, { LAUNCH: { count: 3, bytes: 0, timeMs: 1.5 } });
    assert.equal(s.rtt.p50Ms, 0.3);
    assert.ok(Number.isNaN(s.rtt.p99Ms));
    assert.throws(() => parseStats(null), (e: BadMessageError) => e.code === 'RGPU_ERR_BAD_MESSAGE');
  });

  it('parses status sessions and defaults', () => {
    const st = parseStatus({ pool: { url: 'x', connected: 1 }, sessions: [{ id: 'a', state: 'queued', queuePosition: 2 }, 'junk'] });
    assert.equal(st.pool.connected, false);
    assert.deepEqual(st.sessions, [{ id: 'a', pid: undefined, argv0: undefined, gpuType: undefined, device: undefined, state: 'queued', queuePosition: 2 }]);
  });

  it('formats', () => {
    assert.equal(formatMs(0.423), '0.42 ms');
    assert.equal(formatMs(4.26), '4.3 ms');
    assert.equal(formatMs(4200), '4.20 s');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(15 * 2 ** 30), '15 GiB');
  });

  it('maps Jupyter iopub messages to notebook outputs', () => {
    assert.deepEqual(mapIopub('stream', { name: 'stderr', text: 'w' }), { kind: 'stderr', parts: [{ mime: 'text/plain', value: 'w' }] });
    const d = mapIopub('execute_result', { data: { 'text/plain': '42', 'text/html': '<b>42</b>' } })!;
    assert.deepEqual(d.parts.map((p) => p.mime), ['text/html', 'text/plain']);
    const e = mapIopub('error', { ename: 'ZeroDivisionError', evalue: 'division by zero', traceback: ['\u001b[31mTraceback\u001b[0m', 'x'] })!;
    assert.deepEqual(e.error, { name: 'ZeroDivisionError', message: 'division by zero', stack: 'Traceback\nx' });
    assert.equal(mapIopub('status', { execution_state: 'idle' }), undefined);
  });
});
