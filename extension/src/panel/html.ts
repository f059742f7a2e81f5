// Pure: the statistics webview's HTML. Strict CSP: nothing by default, scripts only with this render's nonce,
// styles and scripts only from the webview's resource origin (media/), no inline handlers.
import * as crypto from 'node:crypto';

export interface StatsHtmlInputs {
  cspSource: string;
  nonce: string;
  scriptUri: string;
  styleUri: string;
  uplotScriptUri: string;
  uplotStyleUri: string;
}

export function makeNonce(): string {
  return crypto.randomBytes(18).toString('base64').replace(/[+/=]/g, '');
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function statsCsp(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource} data:`,
    `style-src ${cspSource}`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
}

export function buildStatsHtml(i: StatsHtmlInputs): string {
  if (!/^[A-Za-z0-9]{16,}$/.test(i.nonce)) throw new RangeError('nonce must be at least 16 alphanumeric characters');
  const n = esc(i.nonce);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${esc(statsCsp(i.cspSource, i.nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${esc(i.uplotStyleUri)}">
<link rel="stylesheet" href="${esc(i.styleUri)}">
<title>Remote GPU Statistics</title>
</head>
<body>
<header>
  <div class="summary">
    <div class="metric"><span class="label">GPU</span><span class="value" id="gpu-type">–</span></div>
    <div class="metric"><span class="label">RTT p50</span><span class="value" id="rtt-p50">–</span></div>
    <div class="metric"><span class="label">RTT p99</span><span class="value" id="rtt-p99">–</span></div>
    <div class="metric"><span class="label">Host→device</span><span class="value" id="h2d-rate">–</span></div>
    <div class="metric"><span class="label">Device→host</span><span class="value" id="d2h-rate">–</span></div>
    <div class="metric"><span class="label">Ops/s</span><span class="value" id="ops-rate">–</span></div>
    <div class="metric"><span class="label">Queue</span><span class="value" id="queue-depth">–</span></div>
  </div>
  <div class="actions">
    <button type="button" data-command="switchGpu">Switch GPU Type…</button>
    <button type="button" data-command="connectPool" class="secondary">Connect to Pool…</button>
    <button type="button" data-command="restartProxy" class="secondary">Restart Proxy</button>
  </div>
</header>
<main>
  <section class="charts">
    <figure><figcaption>Throughput (bytes/s)</figcaption><div class="chart" id="chart-throughput"></div></figure>
    <figure><figcaption>Operations per second</figcaption><div class="chart" id="chart-ops"></div></figure>
    <figure><figcaption>Round trip (ms)</figcaption><div class="chart" id="chart-rtt"></div></figure>
    <figure><figcaption>Requests awaiting a reply</figcaption><div class="chart" id="chart-queue"></div></figure>
  </section>
  <section class="details">
    <h2>Operations</h2>
    <table id="ops-table"><thead><tr><th>op</th><th>count</th><th>bytes</th><th>time</th><th>avg</th></tr></thead><tbody></tbody></table>
    <h2>Session</h2>
    <dl id="session"></dl>
  </section>
</main>
<script nonce="${n}" src="${esc(i.uplotScriptUri)}"></script>
<script nonce="${n}" src="${esc(i.scriptUri)}"></script>
</body>
</html>`;
}
