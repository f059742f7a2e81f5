// End-to-end test of the packaged extension in a real VS Code (code-server 4.100.3, VS Code 1.100.3) driven
// through Debian's Chromium with playwright-core, fully offline. A stub `ms-toolsai.jupyter` (fixtures/) stands
// in for the Jupyter extension, which cannot be downloaded here. The runtime (kernel-proxy, kernelspec,
// launcher, intercept library, embedded emulated GPU pool) is the real one from this checkout.
// Prints mocha-style results ("N passing" / "N failing") so CI counts them; screenshots go to screenshots/.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser, Frame, Page } from 'playwright-core';

const repo = path.resolve(__dirname, '..', '..', '..');
const here = path.join(repo, 'test', 'e2e');
const shots = path.join(here, 'screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STATUS_ID = 'remote-gpu.remote-gpu.remoteGpu.status';

interface Result { name: string; ok: boolean; ms: number; error?: string }
const results: Result[] = [];
const t0 = Date.now();
const log = (s: string) => process.stdout.write(`    [${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}\n`);

async function step(name: string, fn: () => Promise<void>): Promise<boolean> {
  const s = Date.now();
  try {
    await fn();
    results.push({ name, ok: true, ms: Date.now() - s });
    process.stdout.write(`  ✔ ${name} (${Date.now() - s}ms)\n`);
    return true;
  } catch (e) {
    const error = e instanceof Error ? e.message.split('\n').slice(0, 6).join('\n') : String(e);
    results.push({ name, ok: false, ms: Date.now() - s, error });
    process.stdout.write(`  ✗ ${name}: ${error}\n`);
    return false;
  }
}

function sh(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd, env: opts.env ?? process.env, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${(r.stderr || r.stdout).slice(-2000)}`);
  return r.stdout;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
  });
}

async function waitHttp(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try { if ((await fetch(url)).ok) return; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer in ${ms} ms`);
}

/** The frame (webviews are nested iframes) holding `selector`, searched across all frames of the page. */
async function frameWith(page: Page, selector: string, ms: number): Promise<Frame> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    for (const f of page.frames()) {
      try { if (await f.$(selector)) return f; } catch { /* detached while looking */ }
    }
    await page.waitForTimeout(250);
  }
  throw new Error(`no frame contains ${selector}`);
}

async function runCommand(page: Page, title: string): Promise<void> {
  // The palette can be slow to list commands right after a window loads or an editor opens: retry.
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press('Escape');
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    try {
      await input.waitFor({ state: 'visible', timeout: 10000 });
      await input.fill(`>${title}`);
      await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor({ state: 'visible', timeout: 10000 });
      await page.keyboard.press('Enter');
      return;
    } catch (e) {
      if (attempt >= 3) throw e;
      log(`command palette: "${title}" not listed yet, retrying`);
    }
  }
}

async function statusText(page: Page): Promise<string> {
  return (await page.locator(`[id="${STATUS_ID}"]`).innerText()).trim();
}

function notebook(): object {
  const code = (src: string) => ({ cell_type: 'code', metadata: {}, execution_count: null, outputs: [], source: src });
  return {
    nbformat: 4, nbformat_minor: 5,
    metadata: { kernelspec: { name: 'remote-gpu', display_name: 'Remote GPU' }, language_info: { name: 'python' } },
    cells: [
      code('from remote_gpu import driver\ninfo = driver.device_info(0)\nprint("GPU", info["name"], info["cc"])'),
      code([
        'import ctypes',
        'ck = driver.check',
        'dev, ctx, dptr = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_uint64()',
        'ck("cuDeviceGet", ctypes.byref(dev), 0)',
        'ck("cuCtxCreate_v2", ctypes.byref(ctx), 0, dev)',
        'n = 1 << 20',
        'buf = ctypes.create_string_buffer(b"x" * n, n)',
        'ck("cuMemAlloc_v2", ctypes.byref(dptr), ctypes.c_size_t(n))',
        'for i in range(30):',
        '    ck("cuMemcpyHtoD_v2", dptr, buf, ctypes.c_size_t(n))',
        '    ck("cuMemcpyDtoH_v2", buf, dptr, ctypes.c_size_t(n))',
        'print("copied", 60 * n, "bytes")',
      ].join('\n')),
      // Valid Python that the hints flag: a per-iteration .item() (a sync point on a real tensor).
      code('class Scalar:\n    def item(self):\n        return 1.0\n\nloss, total = Scalar(), 0.0\nfor step in range(1000):\n    total += loss.item()\nprint("total", total)'),
    ],
  };
}

/** On failure, the tail of every extension log under the run's directory (the "Remote GPU" output channel carries
 * the proxy's, jupyter-server's and the kernels' lines): CI keeps nothing else of a failed run. */
function dumpLogs(dir: string): void {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f);
      else if (/Remote GPU|remote-gpu|exthost\.log$|code-server\.log$/.test(e.name)) found.push(f);
    }
  };
  try { walk(dir); } catch { /* partial tree */ }
  for (const f of found) {
    const lines = fs.readFileSync(f, 'utf8').split('\n');
    process.stdout.write(`\n  --- ${path.relative(dir, f)} (last 80 of ${lines.length} lines) ---\n`);
    for (const l of lines.slice(-80)) process.stdout.write(`  | ${l}\n`);
  }
}

async function main(): Promise<number> {
  fs.mkdirSync(shots, { recursive: true });
  const T = fs.mkdtempSync(path.join(os.tmpdir(), 'rgpu-e2e-'));
  let cs: ChildProcess | undefined;
  let browser: Browser | undefined;
  let page: Page | undefined;
  const shot = async (name: string) => { if (page) await page.screenshot({ path: path.join(shots, name) }); };
  process.stdout.write('\n  extension e2e (code-server + Chromium)\n');
  try {
    let csDir = '';
    const ready = await step('code-server 4.100.3 and Chromium are installed (offline recipe)', async () => {
      csDir = sh('bash', [path.join(here, 'setup-code-server.sh')]).trim().split('\n').pop()!;
      if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} missing (apt-get install chromium)`);
    });
    if (!ready) return 1;
    const entry = path.join(csDir, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
    const ws = path.join(T, 'ws');
    const user = path.join(T, 'user');
    const exts = path.join(T, 'ext');
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: path.join(T, 'xdgconfig'), XDG_DATA_HOME: path.join(T, 'xdgdata'), XDG_RUNTIME_DIR: T };
    delete env.VSCODE_IPC_HOOK_CLI;
    const cli = (...a: string[]) => sh(process.execPath, [entry, '--user-data-dir', user, '--extensions-dir', exts, ...a], { env });

    await step('packages the extension and the Jupyter stub, installs both', async () => {
      const vsix = path.join(repo, 'build', 'remote-gpu.vsix');
      if (!fs.existsSync(vsix)) sh('npm', ['run', 'package'], { cwd: repo });
      const list = sh('unzip', ['-Z1', vsix]).split('\n').filter(Boolean);
      for (const must of ['extension/package.json', 'extension/out/extension/src/extension.js', 'extension/out/extension/bundle/activate.js',
        'extension/out/extension/bundle/server.js', 'extension/media/stats.js', 'extension/media/vendor/uPlot.iife.min.js']) {
        if (!list.includes(must)) throw new Error(`vsix lacks ${must}`);
      }
      const bad = list.filter((f) => /test\/|\.test\.|\.ts$|node_modules\//.test(f));
      if (bad.length) throw new Error(`vsix carries test or source files: ${bad.join(', ')}`);
      const stubDir = path.join(T, 'jupyter-stub');
      fs.cpSync(path.join(here, 'fixtures', 'jupyter-stub'), stubDir, { recursive: true });
      const stubVsix = path.join(T, 'jupyter-stub.vsix');
      sh(process.execPath, [path.join(repo, 'node_modules', '@vscode', 'vsce', 'vsce'), 'package', '--allow-missing-repository', '--skip-license', '-o', stubVsix], { cwd: stubDir });
      cli('--install-extension', stubVsix);
      cli('--install-extension', vsix);
      const installed = cli('--list-extensions');
      if (!/remote-gpu\.remote-gpu/.test(installed) || !/ms-toolsai\.jupyter/.test(installed)) throw new Error(`installed: ${installed}`);
    });

    fs.mkdirSync(ws, { recursive: true });
    fs.writeFileSync(path.join(ws, 'demo.ipynb'), JSON.stringify(notebook(), null, 1));
    fs.writeFileSync(path.join(ws, 'train.py'), 'import torch\nfor step in range(10000):\n    loss = model(x).sum()\n    total += loss.item()\n');
    fs.mkdirSync(path.join(user, 'User'), { recursive: true });
    fs.writeFileSync(path.join(user, 'User', 'settings.json'), JSON.stringify({
      'workbench.startupEditor': 'none', 'security.workspace.trust.enabled': false, 'telemetry.telemetryLevel': 'off',
      'extensions.autoCheckUpdates': false, 'extensions.autoUpdate': false, 'update.mode': 'none', 'workbench.enableExperiments': false,
      'workbench.tips.enabled': false, 'notebook.confirmDeleteRunningCell': false,
      'remoteGpu.runtimePath': repo, 'remoteGpu.builtinController': 'always', 'remoteGpu.statistics.refreshMs': 500,
      'remoteGpu.pythonPath': '/usr/bin/python3',
    }, null, 1));

    const port = await freePort();
    cs = spawn(process.execPath, [entry, '--user-data-dir', user, '--extensions-dir', exts, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`,
      '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override', ws],
    { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const csLog = fs.createWriteStream(path.join(T, 'code-server.log'));
    cs.stdout!.pipe(csLog); cs.stderr!.pipe(csLog);
    await waitHttp(`http://127.0.0.1:${port}/healthz`, 30000);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'] });
    page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
    const p = page;
    await p.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(ws)}`, { waitUntil: 'domcontentloaded', timeout: 120000 });
    await p.waitForSelector('.monaco-workbench', { timeout: 120000 });
    log('workbench loaded');

    let firstStatus = '';
    await step('status bar shows the GPU type and a measured latency', async () => {
      const item = p.locator(`[id="${STATUS_ID}"]`);
      await item.waitFor({ timeout: 120000 });
      const end = Date.now() + 90000;
      const want = /^\S*\s*(T4|A100-40GB)\s+·\s+\d+(\.\d+)? (ms|s)$/;
      while (Date.now() < end && !want.test(firstStatus = await statusText(p))) await p.waitForTimeout(300);
      if (!want.test(firstStatus)) throw new Error(`status bar reads "${firstStatus}"`);
      log(`status bar: "${firstStatus}"`);
      await shot('1-status-bar.png');
      await item.hover();
      const tip = p.locator('.monaco-hover, .workbench-hover', { hasText: 'Round trip' }).first();
      await tip.waitFor({ timeout: 15000 });
      const tipText = await tip.innerText();
      if (!/Pool: .*connected/.test(tipText)) throw new Error(`tooltip: ${tipText}`);
      log(`tooltip: ${tipText.replace(/\s+/g, ' ').slice(0, 160)}`);
      await shot('1-status-bar-tooltip.png');
      await p.mouse.move(700, 400);
    });

    let switchedTo = '';
    const notebookRan = await step('opens the notebook, picks the Remote GPU kernel, runs the cells on the remote GPU; hints flag a loop in a cell', async () => {
      await p.keyboard.press('Escape');
      await p.keyboard.press('Control+P');
      await p.locator('.quick-input-widget input').fill('demo.ipynb');
      await p.locator('.quick-input-list .monaco-list-row', { hasText: 'demo.ipynb' }).first().waitFor({ timeout: 10000 });
      await p.keyboard.press('Enter');
      await p.locator('.notebook-editor >> visible=true').waitFor({ timeout: 30000 });
      await runCommand(p, 'Notebook: Select Notebook Kernel');
      const row = p.locator('.quick-input-list .monaco-list-row', { hasText: 'Remote GPU' }).first();
      await row.waitFor({ timeout: 40000 });
      await row.click();
      await p.waitForTimeout(500);
      await runCommand(p, 'Notebook: Run All');
      const out = await frameWith(p, 'text=/copied \\d+ bytes/', 150000);
      // The hints server also covers notebook cells (vscode-notebook-cell documents): the third cell's .item().
      await p.locator('.notebook-editor >> visible=true').locator('.squiggly-warning').first().waitFor({ timeout: 30000 });
      const gpuLine = await out.locator('text=/^GPU /').first().innerText();
      log(`notebook output: ${gpuLine.trim()}`);
      await shot('2-notebook.png');
    });

    await step('with a notebook open, the Jupyter API gets a "Remote GPU" server collection whose server lists the remote-gpu kernel', async () => {
      await runCommand(p, 'Jupyter Stub: Pick Remote GPU Server');
      const file = path.join(ws, 'jupyter-stub-result.json');
      const end = Date.now() + 60000;
      while (Date.now() < end && !fs.existsSync(file)) await p.waitForTimeout(300);
      const r = JSON.parse(fs.readFileSync(file, 'utf8')) as { error?: string; collections: { id: string; label: string }[]; servers: string[]; kernelspecs: string[]; baseUrl: string; commands: string[] };
      if (r.error) throw new Error(r.error);
      if (!r.collections.some((c) => c.id === 'remote-gpu' && c.label === 'Remote GPU')) throw new Error(JSON.stringify(r.collections));
      if (!/^http:\/\/127\.0\.0\.1:\d+\/$/.test(r.baseUrl) || r.kernelspecs.join() !== 'remote-gpu') throw new Error(JSON.stringify(r));
      log(`stub picker: commands ${JSON.stringify(r.commands)}, server ${JSON.stringify(r.servers)}, ${r.baseUrl}, kernelspecs ${r.kernelspecs}`);
    });

    await step('switches the GPU type through the quick pick (restarting the kernel after asking)', async () => {
      const before = await statusText(p);
      const from = /(T4|A100-40GB)/.exec(before)?.[1] ?? 'T4';
      const to = from === 'T4' ? 'A100-40GB' : 'T4';
      switchedTo = to;
      await runCommand(p, 'Remote GPU: Switch GPU Type…');
      await p.locator('.quick-input-widget input[placeholder="Select GPU type"]').waitFor({ state: 'visible', timeout: 20000 });
      const rows = await p.locator('.quick-input-list .monaco-list-row').allInnerTexts();
      log(`quick pick: ${rows.map((r) => r.replace(/\s+/g, ' ')).join(' | ')}`);
      await shot('3-switch-quick-pick.png');
      await p.locator('.quick-input-list .monaco-list-row', { hasText: to }).first().click();
      // A running kernel holds device memory on the old GPU: the extension must ask before restarting it.
      if (notebookRan) {
        const confirm = p.getByRole('button', { name: 'Switch and Restart' });
        await confirm.waitFor({ timeout: 10000 });
        await shot('4-switch-confirm.png');
        await confirm.click();
      }
      const end = Date.now() + 30000;
      let now = before;
      while (Date.now() < end && !(now = await statusText(p)).includes(to)) await p.waitForTimeout(300);
      if (!now.includes(to)) throw new Error(`status bar still reads "${now}"`);
      log(`status bar after switch: "${now}"`);
    });

    if (notebookRan) {
      await step('the restarted kernel runs on the new GPU type', async () => {
        // The pool names A100-40GB "NVIDIA A100-SXM4-40GB" and T4 "Tesla T4"; the old output is replaced on re-run.
        const expect = switchedTo === 'T4' ? 'GPU Tesla T4' : 'GPU NVIDIA A100';
        // Run All issued while the restarted kernel is still coming up can be dropped by the notebook: ask again
        // (at most three times) rather than wait out one lost request.
        let out: Frame | undefined;
        for (let attempt = 1; !out; attempt++) {
          await runCommand(p, 'Notebook: Run All');
          try {
            out = await frameWith(p, `text=/${expect}/`, 45000);
          } catch (e) {
            await shot(`restart-attempt-${attempt}.png`);
            if (attempt >= 3) throw e;
            log(`no "${expect}" output yet after Run All (attempt ${attempt}), running again`);
          }
        }
        log(`after the switch the notebook prints: ${(await out.locator(`text=/${expect}/`).first().innerText()).trim()}`);
        await frameWith(p, 'text=/copied \\d+ bytes/', 120000);
      });
    }

    await step('statistics panel shows live numbers and charts while the notebook copies', async () => {
      await runCommand(p, 'Remote GPU: Show Transfer Statistics');
      const f = await frameWith(p, '#rtt-p50', 30000);
      const read = async () => Object.fromEntries(await Promise.all(['gpu-type', 'rtt-p50', 'h2d-rate', 'd2h-rate', 'ops-rate', 'queue-depth'].map(async (id) => [id, (await f.locator(`#${id}`).innerText()).trim()])));
      // Traffic while the panel is open: the notebook stays the active editor, so Run All re-runs the copies.
      await runCommand(p, 'Notebook: Run All');
      const end = Date.now() + 90000;
      let v = await read();
      let live = false;
      while (Date.now() < end) {
        v = await read();
        if (v['rtt-p50'] !== '–' && v['h2d-rate'] !== '0 B/s' && v['d2h-rate'] !== '0 B/s' && Number(v['ops-rate']) > 0) { live = true; break; }
        await p.waitForTimeout(200);
      }
      if (!live) throw new Error(`no live transfer rates in the panel: ${JSON.stringify(v)}`);
      await shot('5-statistics.png');
      if (!/MEMCPY/.test(await f.locator('#ops-table').innerText())) throw new Error('no MEMCPY rows in the op table');
      const canvases = await f.locator('canvas').count();
      if (canvases < 4) throw new Error(`expected 4 uPlot charts, found ${canvases} canvases`);
      // Live: the uptime in the session details must move between two reads 1.5 s apart.
      const up1 = await f.locator('#session').innerText();
      await p.waitForTimeout(1500);
      const up2 = await f.locator('#session').innerText();
      if (up1 === up2) throw new Error('statistics did not update within 1.5 s');
      log(`panel during the copies: ${JSON.stringify(v)}`);
    });

    await step('hints language server flags .item() in a loop, hover shows the cost at the live RTT', async () => {
      await p.keyboard.press('Escape');
      await p.keyboard.press('Control+P');
      await p.locator('.quick-input-widget input').fill('train.py');
      await p.locator('.quick-input-list .monaco-list-row', { hasText: 'train.py' }).first().waitFor({ timeout: 10000 });
      await p.keyboard.press('Enter');
      await p.locator('.squiggly-warning').first().waitFor({ timeout: 30000 });
      await p.keyboard.press('Control+G');
      await p.locator('.quick-input-widget input').fill(':4:20');
      await p.keyboard.press('Enter');
      await runCommand(p, 'Show or Focus Hover');
      const hover = p.locator('.monaco-hover', { hasText: 'round trip p50' }).first();
      await hover.waitFor({ timeout: 15000 });
      const text = await hover.innerText();
      if (!/round trip p50/.test(text) || !/10,000 times/.test(text)) throw new Error(`hover: ${text}`);
      log(`hover: ${text.replace(/\s+/g, ' ').slice(0, 200)}`);
      await shot('6-hints-hover.png');
    });
  } catch (e) {
    results.push({ name: 'e2e harness', ok: false, ms: 0, error: e instanceof Error ? e.message : String(e) });
    process.stdout.write(`  ✗ e2e harness: ${e instanceof Error ? e.stack : e}\n`);
    try { await shot('error.png'); } catch { /* no page */ }
  } finally {
    if (results.some((r) => !r.ok)) dumpLogs(T);
    await browser?.close().catch(() => undefined);
    if (cs?.pid) { try { process.kill(-cs.pid, 'SIGTERM'); } catch { /* gone */ } }
    await new Promise((r) => setTimeout(r, 1500));
    if (cs?.pid) { try { process.kill(-cs.pid, 'SIGKILL'); } catch { /* gone */ } }
    if (process.env.RGPU_E2E_KEEP) log(`kept ${T}`); else fs.rmSync(T, { recursive: true, force: true });
  }
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  process.stdout.write(`\n  ${passed} passing (${Math.round((Date.now() - t0) / 1000)}s)\n`);
  if (failed) {
    process.stdout.write(`  ${failed} failing\n\n`);
    results.filter((r) => !r.ok).forEach((r, i) => process.stdout.write(`  ${i + 1}) ${r.name}:\n     ${r.error}\n`));
  }
  return failed ? 1 : 0;
}

main().then((code) => process.exit(code), (e) => { process.stderr.write(`${e}\n`); process.stdout.write('  0 passing\n  1 failing\n'); process.exit(1); });
