import { spawnSync } from 'node:child_process';
import { PythonNotFoundError } from './kernelErrors';

/**
 * Candidates in order. Debian's /usr/bin/python3 comes before whatever `python3` is first on PATH because
 * on developer machines PATH often starts with a pyenv/conda interpreter that lacks ipykernel.
 */
function candidates(): string[] {
  const list: string[] = [];
  if (process.env.RGPU_PYTHON) list.push(process.env.RGPU_PYTHON);
  list.push('/usr/bin/python3', 'python3', 'python');
  return [...new Set(list)];
}

const cache = new Map<string, string>();

/**
 * Returns an interpreter that can `import ipykernel` (absolute path), or throws PythonNotFoundError.
 * `list` replaces the default candidates (and the cache).
 */
export function findKernelPython(list?: string[]): string {
  const hit = list ? undefined : cache.get('ipykernel');
  if (hit) return hit;
  const tried: string[] = [];
  for (const py of list ?? candidates()) {
    tried.push(py);
    const r = spawnSync(py, ['-c', 'import sys, ipykernel; print(sys.executable)'], { encoding: 'utf8', timeout: 20000 });
    if (r.status === 0 && r.stdout.trim()) {
      const exe = r.stdout.trim();
      if (!list) cache.set('ipykernel', exe);
      return exe;
    }
  }
  throw new PythonNotFoundError(tried);
}
