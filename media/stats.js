//@ts-check
// Statistics webview: renders samples pushed by the extension (extension/src/panel/messages.ts) into uPlot charts.
// Every series lives in a fixed-size ring (WINDOW points), so the view holds the same memory after an hour open.
(function () {
  // @ts-ignore acquireVsCodeApi is injected by VS Code
  const vscode = acquireVsCodeApi();
  // @ts-ignore uPlot is loaded by the preceding script tag
  const UPlot = /** @type {any} */ (window).uPlot;
  const WINDOW = 300; // points per series: five minutes at 1 Hz

  /** A fixed ring of numbers; `view()` fills a reused array oldest-first for uPlot. */
  class Ring {
    /** @param {number} n */
    constructor(n) { this.buf = new Float64Array(n); this.n = n; this.start = 0; this.len = 0; this.out = /** @type {number[]} */ ([]); }
    /** @param {number} v */
    push(v) { this.buf[(this.start + this.len) % this.n] = v; if (this.len < this.n) this.len++; else this.start = (this.start + 1) % this.n; }
    view() { const o = this.out; o.length = this.len; for (let i = 0; i < this.len; i++) o[i] = this.buf[(this.start + i) % this.n]; return o; }
  }

  const FIELDS = ['t', 'h2d', 'd2h', 'ops', 'p50', 'p99', 'queue'];
  /** @type {Record<string, Ring>} */
  const rings = {};
  for (const f of FIELDS) rings[f] = new Ring(WINDOW);

  const css = (/** @type {string} */ v, /** @type {string} */ d) => getComputedStyle(document.body).getPropertyValue(v).trim() || d;
  const fg = () => css('--vscode-foreground', '#ccc');
  const grid = () => css('--vscode-editorWidget-border', 'rgba(128,128,128,0.3)');

  /** @param {number} b */
  function fmtBytes(b) {
    if (!isFinite(b)) return '–';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']; let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return i === 0 ? `${Math.round(b)} B` : `${b < 10 ? b.toFixed(1) : Math.round(b)} ${u[i]}`;
  }
  /** @param {number} ms */
  function fmtMs(ms) {
    if (!isFinite(ms)) return '–';
    return ms < 1 ? `${ms.toFixed(2)} ms` : ms < 10 ? `${ms.toFixed(1)} ms` : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
  }

  /** @type {{el: HTMLElement, plot: any, keys: string[]}[]} */
  const charts = [];
  /**
   * @param {string} id
   * @param {{key: string, label: string, color: string}[]} series
   * @param {(v: number) => string} fmt
   */
  function chart(id, series, fmt) {
    const el = /** @type {HTMLElement} */ (document.getElementById(id));
    const axis = { stroke: fg(), grid: { stroke: grid(), width: 1 }, ticks: { stroke: grid(), width: 1 } };
    const opts = {
      width: Math.max(200, el.clientWidth), height: 150,
      legend: { show: true }, cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [axis, { ...axis, size: 70, values: (/** @type {any} */ _u, /** @type {number[]} */ ticks) => ticks.map(fmt) }],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: css(s.color, '#3794ff'), width: 1.5, value: (/** @type {any} */ _u, /** @type {number} */ v) => (v == null ? '–' : fmt(v)) }))],
    };
    const plot = UPlot ? new UPlot(opts, [[], ...series.map(() => [])], el) : null;
    charts.push({ el, plot, keys: series.map((s) => s.key) });
  }

  chart('chart-throughput', [
    { key: 'h2d', label: 'host→device', color: '--vscode-charts-blue' },
    { key: 'd2h', label: 'device→host', color: '--vscode-charts-orange' }], (v) => `${fmtBytes(v)}/s`);
  chart('chart-ops', [{ key: 'ops', label: 'ops/s', color: '--vscode-charts-green' }], (v) => `${Math.round(v)}`);
  chart('chart-rtt', [
    { key: 'p50', label: 'p50', color: '--vscode-charts-purple' },
    { key: 'p99', label: 'p99', color: '--vscode-charts-red' }], fmtMs);
  chart('chart-queue', [{ key: 'queue', label: 'queued', color: '--vscode-charts-yellow' }], (v) => `${Math.round(v)}`);

  let pending = false;
  function redraw() {
    pending = false;
    // uPlot wants seconds on a time axis.
    const t = rings.t.view().map((x) => x / 1000);
    for (const c of charts) if (c.plot) c.plot.setData([t, ...c.keys.map((k) => rings[k].view().slice())]);
  }
  function scheduleRedraw() { if (!pending) { pending = true; requestAnimationFrame(redraw); } }

  /** @param {any} s */
  function pushSample(s) { for (const f of FIELDS) rings[f].push(Number(s[f]) || 0); }

  const text = (/** @type {string} */ id, /** @type {string} */ v) => { const e = document.getElementById(id); if (e) e.textContent = v; };

  let statusGpu = '';
  /** @param {any} st */
  function renderStats(st) {
    text('gpu-type', st.gpuType || statusGpu || '–');
    text('rtt-p50', fmtMs(st.rtt.p50Ms));
    text('rtt-p99', fmtMs(st.rtt.p99Ms));
    text('h2d-rate', `${fmtBytes(st.h2dBps)}/s`);
    text('d2h-rate', `${fmtBytes(st.d2hBps)}/s`);
    text('ops-rate', `${Math.round(st.opsPerSec)}`);
    text('queue-depth', `${st.queueDepth}`);
    const tbody = /** @type {HTMLTableSectionElement} */ (document.querySelector('#ops-table tbody'));
    const rows = Object.entries(st.ops || {}).sort((a, b) => b[1].timeMs - a[1].timeMs);
    // Rebuilt with textContent only: op names come from another process and are never parsed as HTML.
    tbody.replaceChildren(...rows.map(([name, o]) => {
      const tr = document.createElement('tr');
      for (const v of [name, String(o.count), fmtBytes(o.bytes), fmtMs(o.timeMs), fmtMs(o.count ? o.timeMs / o.count : NaN)]) {
        const td = document.createElement('td'); td.textContent = v; tr.appendChild(td);
      }
      return tr;
    }));
    details.stats = [['uptime', `${Math.round(st.uptimeMs / 1000)} s`], ['to device', fmtBytes(st.bytesToDevice)],
      ['from device', fmtBytes(st.bytesFromDevice)], ['errors', String(st.errors)], ['sessions', String(st.sessions)],
      ['RTT samples', String(st.rtt.samples)], ['device', st.device ? JSON.stringify(st.device) : '–']];
    renderDetails();
  }

  /** @type {{stats: string[][], status: string[][]}} */
  const details = { stats: [], status: [] };
  function renderDetails() {
    const dl = /** @type {HTMLElement} */ (document.getElementById('session'));
    const items = [...details.status, ...details.stats];
    dl.replaceChildren(...items.flatMap(([k, v]) => {
      const dt = document.createElement('dt'); dt.textContent = k;
      const dd = document.createElement('dd'); dd.textContent = v;
      return [dt, dd];
    }));
  }

  window.addEventListener('message', (ev) => {
    const m = ev.data;
    switch (m && m.type) {
      case 'history':
        for (const s of m.samples) pushSample(s);
        scheduleRedraw();
        break;
      case 'stats':
        pushSample(m.sample);
        renderStats(m.stats);
        scheduleRedraw();
        vscode.setState({ last: m.stats });
        break;
      case 'status': {
        const st = m.status;
        statusGpu = m.gpuType || '';
        if (statusGpu) text('gpu-type', statusGpu);
        details.status = [['proxy', m.proxy]];
        if (st) {
          details.status.push(['pool', `${st.pool.embedded || !st.pool.url ? 'embedded' : st.pool.url} (${st.pool.connected ? 'connected' : 'unreachable'}${st.pool.error ? `: ${st.pool.error}` : ''})`]);
          details.status.push(['GPU type', st.gpuType || '–']);
          for (const s of st.sessions) details.status.push([`session ${s.id}`, `${s.argv0 || ''} ${s.pid ? `pid ${s.pid}` : ''} ${s.state === 'queued' ? `queued #${s.queuePosition}` : s.device || s.gpuType || ''}${s.lane ? ' · data lane' : ''}`]);
        }
        renderDetails();
        break;
      }
    }
  });

  document.querySelectorAll('button[data-command]').forEach((b) => b.addEventListener('click', () => {
    vscode.postMessage({ type: 'command', command: /** @type {HTMLElement} */ (b).dataset.command });
  }));

  new ResizeObserver(() => {
    for (const c of charts) if (c.plot) c.plot.setSize({ width: Math.max(200, c.el.clientWidth), height: 150 });
  }).observe(document.body);

  const prev = vscode.getState();
  if (prev && prev.last) renderStats(prev.last);
  vscode.postMessage({ type: 'ready' });
})();
