// Ops that need no device work: PING, INVENTORY, SESSION_STATS, GOODBYE (the connection closes after it).
import { packValue } from '../../../protocol/ts/codec';
import { decodePingArgs, encodePingReply, opName, PingReplySize } from '../../../protocol/generated/ops';
import type { HandlerTable, ServerEnv, Reply } from '../handler';
import type { Frame } from '../../../protocol/ts/codec';
import { OP_SLOTS, type Session } from '../session';

/** Control ops also serve connections that hold no session (purpose "control"). */
export const controlOps = {
  PING(f: Frame): Reply {
    const body = Buffer.allocUnsafe(PingReplySize);
    encodePingReply(body, 0, decodePingArgs(f.body));
    return { body };
  },
  INVENTORY(_f: Frame, env: ServerEnv): Reply {
    return { body: packValue(env.pool.inventory()) };
  },
};

export const controlHandlers: HandlerTable = {
  PING: (f) => controlOps.PING(f),
  INVENTORY: (f, _s, env) => controlOps.INVENTORY(f, env),
  SESSION_STATS(_f, s: Session) {
    const ops: Record<string, number> = {};
    for (let i = 0; i < OP_SLOTS; i++) if (s.opCounts[i]) ops[opName(i)] = s.opCounts[i];
    return { body: packValue({ ...s.stats(), ops }) };
  },
  // The connection ends the session after this frame (client.ts); nothing to do here.
  GOODBYE() {},
};
