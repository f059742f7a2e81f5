import * as assert from 'node:assert/strict';
import { Op } from '../../gpu-runtime/protocol/generated/ops';
import { ProxyStats } from '../../kernel-proxy/src/stats';

describe('kernel-proxy ProxyStats', () => {
  it('counts bytes each way and ops by type with their reply time', () => {
    const s = new ProxyStats();
    s.request(Op.LAUNCH, 100);
    s.request(Op.LAUNCH, 100);
    s.request(Op.MEMCPY_DTOH, 40);
    s.reply(Op.MEMCPY_DTOH, 24 + 4096, 2.5, 0);
    s.inbound(30);
    const snap = s.snapshot({ sessions: 1, gpuType: 'T4', device: 'Tesla T4' });
    assert.equal(snap.bytesToDevice, 240);
    assert.equal(snap.bytesFromDevice, 24 + 4096 + 30);
    assert.deepEqual(snap.ops.LAUNCH, { count: 2, bytes: 200, timeMs: 0 });
    assert.deepEqual(snap.ops.MEMCPY_DTOH, { count: 1, bytes: 40 + 24 + 4096, timeMs: 2.5 });
    assert.equal(snap.rtt.samples, 1);
    assert.equal(snap.rtt.lastMs, 2.5);
    assert.equal(snap.sessions, 1);
    assert.equal(snap.device, 'Tesla T4');
    assert.equal(snap.errors, 0);
  });

  it('counts error replies and keeps unmatched or unsampled replies out of the RTT figures', () => {
    const s = new ProxyStats();
    s.reply(Op.EVENT_QUERY, 24, 1, 600);
    s.reply(Op.CTX_SYNC, 24, -1, 0);
    s.reply(Op.HELLO, 100, 5000, 0, false);
    const snap = s.snapshot({ sessions: 0, gpuType: '' });
    assert.equal(snap.errors, 1);
    assert.equal(snap.rtt.samples, 1);
    assert.equal(snap.ops.HELLO.timeMs, 5000);
    assert.equal('device' in snap, false);
  });

  it('computes p50/p99 over the samples', () => {
    const s = new ProxyStats();
    for (let i = 1; i <= 100; i++) s.rttSample(i);
    const r = s.snapshot({ sessions: 0, gpuType: '' }).rtt;
    assert.equal(r.p50Ms, 51);
    assert.equal(r.p99Ms, 100);
    assert.equal(r.samples, 100);
    assert.equal(r.lastMs, 100);
  });

  it('computes rates over the interval between ticks', () => {
    const s = new ProxyStats();
    const t0 = performance.now();
    s.tick(t0);
    for (let i = 0; i < 50; i++) s.request(Op.LAUNCH, 200);
    s.reply(Op.CTX_SYNC, 1000, 1, 0);
    s.tick(t0 + 500);
    const snap = s.snapshot({ sessions: 0, gpuType: '' });
    assert.equal(snap.opsPerSec, 100);
    assert.equal(snap.h2dBps, 20000);
    assert.equal(snap.d2hBps, 2000);
  });
});
