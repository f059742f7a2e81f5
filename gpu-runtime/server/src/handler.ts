// The shape every op handler has. A handler runs synchronously in frame order (so stream-ordered work
// reaches the backend in arrival order) and returns either its reply or a promise of it when the reply has
// to wait for the device. It throws CudaError for a failed call.
import type { Frame } from '../../protocol/ts/codec';
import type { ModuleCache } from './moduleCache';
import type { Pool } from './pool';
import type { Session } from './session';

export interface Reply {
  result?: number;
  body?: Buffer;
  bulk?: Buffer;
  /** Bytes sent on the session's data lane just before the reply (MEMCPY_DTOH_LANE). */
  lane?: Buffer;
}

export type HandlerResult = Reply | void | Promise<Reply | void>;

/** What the server shares with every session. */
export interface ServerEnv {
  readonly pool: Pool;
  readonly cache: ModuleCache;
  readonly serverName: string;
}

export type SessionHandler = (f: Frame, s: Session, env: ServerEnv) => HandlerResult;

/** Handlers by op name, as ops.yaml spells them; dispatch.ts binds them to ids. */
export type HandlerTable = Record<string, SessionHandler>;

/**
 * The reply of a synchronising op: waits for `done`, then answers with the first deferred error (taken
 * now, in frame order) or the device's error.
 */
export function syncReply(s: Session, done: Promise<void>, reply?: Reply): Promise<Reply | void> {
  const deferred = s.takeDeferred();
  return done.then(
    () => {
      if (deferred) throw deferred;
      return reply;
    },
    (e) => {
      throw deferred ?? e;
    },
  );
}
