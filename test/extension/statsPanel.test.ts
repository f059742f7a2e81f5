import * as assert from 'node:assert/strict';
import { BadMessageError } from '../../extension/src/common/errors';
import { buildStatsHtml, makeNonce, statsCsp } from '../../extension/src/panel/html';
import { parseFromWebview, sampleOf } from '../../extension/src/panel/messages';
import { StatsHistory } from '../../extension/src/panel/statsHistory';
import { StatsPanel } from '../../extension/src/panel/statsPanel';
import { parseStats } from '../../extension/src/proxy/protocol';
import { createFakeVscode, FakeUri } from './fakeVscode';

const stats = (t: number) => parseStats({ t, h2dBps: 100, d2hBps: 50, opsPerSec: 7, rtt: { lastMs: 1, p50Ms: 0.5, p99Ms: 2, samples: 3 }, queueDepth: 1, gpuType: 'T4' });

describe('extension statistics webview', () => {
  afterEach(() => StatsPanel.close());

  it('HTML has a strict CSP and every script carries the nonce', () => {
    const nonce = makeNonce();
    assert.match(nonce, /^[A-Za-z0-9]{16,}$/);
    const html = buildStatsHtml({ cspSource: 'https://x.cdn', nonce, scriptUri: 'https://x.cdn/m/stats.js', styleUri: 'https://x.cdn/m/stats.css',
      uplotScriptUri: 'https://x.cdn/m/vendor/u.js', uplotStyleUri: 'https://x.cdn/m/vendor/u.css' });
    const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)![1].replaceAll('&#39;', "'");
    assert.equal(csp, statsCsp('https://x.cdn', nonce));
    assert.match(csp, /^default-src 'none';/);
    assert.match(csp, new RegExp(`script-src 'nonce-${nonce}'$`));
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const scripts = html.match(/<script[^>]*>/g)!;
    assert.equal(scripts.length, 2);
    for (const s of scripts) assert.ok(s.includes(`nonce="${nonce}"`) && s.includes('src="https://x.cdn/'), s);
    assert.doesNotMatch(html, /\son\w+=/, 'no inline event handlers');
  });

  it('refuses a weak nonce', () => {
    assert.throws(() => buildStatsHtml({ cspSource: 'a', nonce: 'abc', scriptUri: '', styleUri: '', uplotScriptUri: '', uplotStyleUri: '' }), RangeError);
  });

  it('validates messages from the webview', () => {
    assert.deepEqual(parseFromWebview({ type: 'ready' }), { type: 'ready' });
    assert.deepEqual(parseFromWebview({ type: 'command', command: 'switchGpu' }), { type: 'command', command: 'switchGpu' });
    for (const bad of [null, 'ready', { type: 'command', command: 'rm -rf' }, { type: 'eval', code: '1' }]) {
      assert.throws(() => parseFromWebview(bad), BadMessageError);
    }
  });

  it('panel: media-only resource root, history on ready, ticks after, commands forwarded, junk ignored', async () => {
    const f = createFakeVscode();
    const history = new StatsHistory(3);
    for (let i = 0; i < 5; i++) history.push(sampleOf(stats(i)));
    const logs: string[] = [];
    const media = FakeUri.file('/ext/media');
    StatsPanel.post(stats(99)); // no panel yet: nothing happens
    StatsPanel.show(f.vs, media as never, { history, latestStatus: () => ({ status: undefined, proxy: 'running', gpuType: 'T4' }) }, (s) => logs.push(s));
    const panel = f.panels[0];
    assert.equal(panel.options.enableScripts, true);
    assert.deepEqual(panel.options.localResourceRoots!.map(String), ['file:/ext/media']);
    assert.match(panel.webview.html, /src="https:\/\/fake\.vscode-cdn\.net\/ext\/media\/stats\.js"/);
    StatsPanel.post(stats(100)); // before ready: dropped, the history covers it
    assert.equal(panel.webview.posted.length, 0);
    panel.webview.received.fire({ type: 'ready' });
    const [hist, st] = panel.webview.posted as { type: string; samples?: { t: number }[] }[];
    assert.equal(hist.type, 'history');
    assert.deepEqual(hist.samples!.map((s) => s.t), [2, 3, 4]);
    assert.equal(st.type, 'status');
    assert.equal((st as { gpuType?: string }).gpuType, 'T4');
    StatsPanel.post(stats(101));
    const tick = panel.webview.posted[2] as { type: string; sample: { t: number; p99: number } };
    assert.equal(tick.type, 'stats');
    assert.equal(tick.sample.t, 101);
    assert.equal(tick.sample.p99, 2);
    panel.webview.received.fire({ type: 'command', command: 'restartProxy' });
    assert.deepEqual(f.executed.map((e) => e.command), ['remoteGpu.restartProxy']);
    panel.webview.received.fire({ type: 'command', command: 'workbench.action.terminal.new' });
    assert.equal(f.executed.length, 1);
    assert.match(logs.join('\n'), /ignored webview message/);
    // Showing twice reveals the same panel.
    StatsPanel.show(f.vs, media as never, { history, latestStatus: () => ({ status: undefined, proxy: 'running', gpuType: 'T4' }) }, () => {});
    assert.equal(f.panels.length, 1);
    assert.equal(panel.revealed, 1);
    panel.dispose();
    assert.equal(StatsPanel.isOpen, false);
  });
});
