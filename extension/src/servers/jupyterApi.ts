import type * as vscode from 'vscode';
import type { Jupyter } from '@vscode/jupyter-extension';

export const JUPYTER_EXTENSION_ID = 'ms-toolsai.jupyter';

/** The Jupyter extension's API, or undefined when the extension is not installed or did not activate. */
export async function getJupyterApi(vs: typeof vscode, log: (s: string) => void): Promise<Jupyter | undefined> {
  const ext = vs.extensions.getExtension<Jupyter>(JUPYTER_EXTENSION_ID);
  if (!ext) return undefined;
  try {
    const api = ext.isActive ? ext.exports : await ext.activate();
    if (!api || typeof api.createJupyterServerCollection !== 'function') {
      log(`${JUPYTER_EXTENSION_ID} ${String(ext.packageJSON?.version)} has no createJupyterServerCollection`);
      return undefined;
    }
    return api;
  } catch (e) {
    log(`activating ${JUPYTER_EXTENSION_ID} failed: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
}
