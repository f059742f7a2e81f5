import type { Disposable } from './disposables';

export type Listener<T> = (e: T) => void;
export type Event<T> = (listener: Listener<T>) => Disposable;

/** A minimal event emitter shaped like vscode.EventEmitter, for the modules that must run without VS Code. */
export class Emitter<T> implements Disposable {
  private listeners = new Set<Listener<T>>();

  readonly event: Event<T> = (listener) => {
    this.listeners.add(listener);
    return { dispose: () => { this.listeners.delete(listener); } };
  };

  fire(e: T): void {
    for (const l of [...this.listeners]) {
      try { l(e); } catch { /* a failing listener must not starve the others */ }
    }
  }

  dispose(): void { this.listeners.clear(); }
}
