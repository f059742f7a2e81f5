// Bundles what the packaged extension runs, because `vsce package --no-dependencies` ships no node_modules:
//  - the extension (activate.ts) and the hints language server, into out/extension/bundle/ (esbuild); package.json
//    "main" (extension.ts) loads tsc's output when present, else this bundle;
// The runtime (rgpu CLI, proxy, launcher, intercept library) is not bundled: the CLI loads its subcommands with
// computed require paths, so it runs from a built checkout named by `remoteGpu.runtimePath` or `rgpu` on PATH.
//  - uPlot's browser build into media/vendor/ (the webview may load only from media/).
// Run by `vscode:prepublish` (i.e. by `npm run package`) and by the e2e test before packaging.
import { build } from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const at = (...p) => path.join(root, ...p);

const entries = [
  ['extension/src/activate.ts', 'out/extension/bundle/activate.js'],
  ['extension/src/lsp/server.ts', 'out/extension/bundle/server.js'],
];

const t0 = Date.now();
for (const [src, out] of entries) {
  await build({
    entryPoints: [at(src)], outfile: at(out), bundle: true, platform: 'node', format: 'cjs', target: 'node20',
    sourcemap: false, minify: false, logLevel: 'warning',
    // vscode is provided by the host; bufferutil/utf-8-validate are optional native peers of ws.
    external: ['vscode', 'bufferutil', 'utf-8-validate'],
  });
}
fs.mkdirSync(at('media', 'vendor'), { recursive: true });
for (const f of ['uPlot.iife.min.js', 'uPlot.min.css']) fs.copyFileSync(at('node_modules', 'uplot', 'dist', f), at('media', 'vendor', f));
console.log(`bundle: done in ${Date.now() - t0} ms`);
