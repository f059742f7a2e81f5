// Where the Remote GPU runtime (the `rgpu` CLI: proxy, kernelspec, launcher) lives and how to run it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultSocketPath } from '../../../kernel-proxy/src/socketPath';

export interface RuntimeLocation {
  /** Node binary that runs the CLI: `node` on PATH, else the extension host's own (in Electron mode). */
  node: string;
  nodeEnv: NodeJS.ProcessEnv;
  /** out/gpu-runtime/cli/src/main.js of a built checkout or install. */
  cli: string;
  root: string;
}

const CLI = path.join('out', 'gpu-runtime', 'cli', 'src', 'main.js');

function findOnPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const d of (env.PATH ?? '').split(path.delimiter)) {
    if (!d) continue;
    const p = path.join(d, name);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch { /* next */ }
  }
  return undefined;
}

/**
 * Candidates in order: the `remoteGpu.runtimePath` setting, the extension's own folder (a checkout run as an
 * extension), then `rgpu` on PATH (resolved to its checkout through the symlinked bin/rgpu).
 */
export function locateRuntime(setting: string, extensionPath: string, env: NodeJS.ProcessEnv = process.env): RuntimeLocation | undefined {
  const roots = [setting, extensionPath].filter(Boolean);
  const rgpu = findOnPath('rgpu', env);
  if (rgpu) { try { roots.push(path.dirname(path.dirname(fs.realpathSync(rgpu)))); } catch { /* dangling */ } }
  const node = findOnPath('node', env);
  for (const root of roots) {
    const cli = path.join(root, CLI);
    if (fs.existsSync(cli)) {
      return node
        ? { node, nodeEnv: { ...env }, cli, root }
        : { node: process.execPath, nodeEnv: { ...env, ELECTRON_RUN_AS_NODE: '1' }, cli, root };
    }
  }
  return undefined;
}

/**
 * The proxy socket this window's proxy serves. Private to the window (not the per-user default the kernel
 * launcher would otherwise share) so the extension's proxy, its pool and its token are the kernel's. Kept short:
 * Unix socket paths are limited to 107 bytes, which extension storage paths can exceed.
 */
export function proxySocketPath(env: NodeJS.ProcessEnv = process.env, pid = process.pid): string {
  // The per-user default's directory, so `rgpu smi` finds this window's proxy next to the default one.
  return path.join(path.dirname(defaultSocketPath(env)), `vscode-${pid}.sock`);
}
