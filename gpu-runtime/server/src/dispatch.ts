// Op id → handler, bound by the names in generated/ops.ts (the handler tables are keyed by op name, so
// there is no hand-kept list of ids). Runs one session frame: shape checks, the sticky error, the handler,
// then the reply now, the reply later, or the deferred error of a no-reply op.
import { CudaError, CUresult } from './backend';
import { Flag, OPS, type OpDescriptor } from '../../protocol/generated/ops';
import { ProtocolError, type Frame } from '../../protocol/ts/codec';
import type { HandlerTable, Reply, ServerEnv, SessionHandler } from './handler';
import { controlHandlers } from './handlers/control';
import { memoryHandlers } from './handlers/memory';
import { moduleHandlers } from './handlers/module';
import { streamHandlers } from './handlers/stream';
import { textureHandlers } from './handlers/texture';
import { OP_SLOTS, toCudaError, type Session } from './session';

/** Where the dispatcher sends replies; the connection drops them once it is closed. */
export interface ReplySink {
  reply(req: Frame, r: Reply | void): void;
  fail(req: Frame, e: CudaError): void;
}

interface Entry {
  desc: OpDescriptor;
  handler: SessionHandler;
  /** Ops that answer from the device later: they count against quota.queuedOps. */
  waits: boolean;
  /** Ops that keep working after a fault (they touch no device state). */
  stickyExempt: boolean;
}

const STICKY_EXEMPT = new Set(['PING', 'INVENTORY', 'SESSION_STATS', 'GOODBYE']);
const WAITING = new Set(['CTX_SYNC', 'STREAM_SYNC', 'EVENT_SYNC', 'MEMCPY_DTOH', 'MEMCPY_DTOH_2D', 'MEMCPY_DTOH_LANE', 'MEMCPY_DTOH_2D_LANE']);

const notImplemented = (d: OpDescriptor): SessionHandler => () => {
  throw new CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED, `${d.name} is not implemented by this server`);
};

/** The table by op id; throws at start-up when a handler names an op ops.yaml does not have. */
export function buildDispatchTable(tables: HandlerTable[] = [controlHandlers, memoryHandlers, moduleHandlers, streamHandlers, textureHandlers]): Map<number, Entry> {
  const byName = new Map<string, SessionHandler>();
  for (const t of tables) for (const [name, h] of Object.entries(t)) byName.set(name, h);
  const known = new Set([...OPS.values()].map((d) => d.name));
  for (const name of byName.keys()) if (!known.has(name)) throw new Error(`handler for ${name}, which is not an op of ops.yaml`);
  const table = new Map<number, Entry>();
  for (const d of OPS.values()) {
    if (d.notify || d.name === 'HELLO') continue; // server → client only, or handled by the handshake
    table.set(d.id, { desc: d, handler: byName.get(d.name) ?? notImplemented(d), waits: WAITING.has(d.name), stickyExempt: STICKY_EXEMPT.has(d.name) });
  }
  return table;
}

/** Body and bulk must have the size ops.yaml gives the op. */
function checkShape(d: OpDescriptor, f: Frame): void {
  if (d.body === 'fixed' && f.body.length !== d.fixedSize) {
    throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `${d.name}: body of ${f.body.length} bytes, expected ${d.fixedSize}`);
  }
  if (d.body === 'none' && f.body.length !== 0) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `${d.name}: takes no body`);
  if (!d.bulk && f.bulk.length !== 0) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, `${d.name}: takes no bulk data`);
}

/** Protocol-level failures inside a body are the caller's bad value, never a server fault. */
function asCudaError(e: unknown): CudaError {
  if (e instanceof ProtocolError) return new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, e.message, { cause: e });
  if (e instanceof RangeError) return new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, e.message, { cause: e });
  return toCudaError(e);
}

export class Dispatcher {
  constructor(
    private readonly env: ServerEnv,
    private readonly table = buildDispatchTable(),
  ) {}

  has(op: number): boolean {
    return this.table.has(op);
  }

  /** Runs one frame of a session. Never throws: every failure becomes a reply or a deferred error. */
  run(f: Frame, s: Session, sink: ReplySink): void {
    s.opCounts[f.op < OP_SLOTS ? f.op : OP_SLOTS - 1]++;
    const noReply = (f.flags & Flag.NO_REPLY) !== 0;
    const e = this.table.get(f.op);
    try {
      if (!e) {
        const known = OPS.get(f.op);
        throw new CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED, known ? `${known.name} is not a request a session sends` : `unknown op ${f.op}`);
      }
      checkShape(e.desc, f);
      if (!e.stickyExempt) {
        const sticky = s.sticky;
        if (sticky) throw sticky;
      }
      if (e.waits && s.pending >= s.quota.queuedOps) {
        throw new CudaError(CUresult.CUDA_ERROR_OUT_OF_MEMORY, `more than ${s.quota.queuedOps} requests waiting on the device`);
      }
      const r = e.handler(f, s, this.env);
      if (r instanceof Promise) {
        s.pending++;
        r.then(
          (v) => {
            s.pending--;
            if (!noReply) sink.reply(f, v);
          },
          (err) => {
            s.pending--;
            this.failed(f, s, sink, noReply, asCudaError(err));
          },
        );
      } else if (!noReply) sink.reply(f, r);
    } catch (err) {
      this.failed(f, s, sink, noReply, asCudaError(err));
    }
  }

  private failed(f: Frame, s: Session, sink: ReplySink, noReply: boolean, e: CudaError): void {
    if (noReply) s.defer(e);
    else {
      s.noteFault(e);
      sink.fail(f, e);
    }
  }
}
