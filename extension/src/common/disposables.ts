// Structural, so the pure modules and unit tests need no `vscode` import.
export interface Disposable { dispose(): unknown }

/**
 * Owns disposables and releases them in reverse order of addition (later things may depend on earlier ones).
 * Idempotent; anything added after dispose() is disposed at once, so late async registrations cannot leak.
 */
export class DisposableStore implements Disposable {
  private items: Disposable[] = [];
  private disposed = false;

  get isDisposed(): boolean { return this.disposed; }

  add<T extends Disposable>(d: T): T {
    if (this.disposed) { safeDispose(d); } else { this.items.push(d); }
    return d;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const items = this.items;
    this.items = [];
    for (let i = items.length - 1; i >= 0; i--) safeDispose(items[i]);
  }
}

function safeDispose(d: Disposable): void {
  try { d.dispose(); } catch { /* one failing disposer must not keep the others alive */ }
}

export function toDisposable(fn: () => unknown): Disposable {
  let done = false;
  return { dispose: () => { if (!done) { done = true; fn(); } } };
}
