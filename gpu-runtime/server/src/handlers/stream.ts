// Streams, events and context synchronisation. Handles are minted by the client (contracts.md), so
// creating one is a no-reply op; naming one the session does not own is CUDA_ERROR_INVALID_HANDLE.
import { CudaError, CUresult } from '../backend';
import {
  decodeCtxSetLimitArgs,
  decodeEventCreateArgs,
  decodeEventDestroyArgs,
  decodeEventElapsedArgs,
  decodeEventQueryArgs,
  decodeEventRecordArgs,
  decodeEventSyncArgs,
  decodeStreamCreateArgs,
  decodeStreamDestroyArgs,
  decodeStreamWaitEventArgs,
  encodeEventElapsedReply,
  EventElapsedReplySize,
} from '../../../protocol/generated/ops';
import { syncReply, type HandlerTable, type Reply } from '../handler';

const NOT_READY: Reply = { result: CUresult.CUDA_ERROR_NOT_READY };
const idleReply = (idle: boolean): Reply | undefined => (idle ? undefined : NOT_READY);

function elapsedReply(ms: number): Reply {
  if (!Number.isFinite(ms)) throw new CudaError(CUresult.CUDA_ERROR_INVALID_VALUE, 'EVENT_ELAPSED: no time between these events');
  const body = Buffer.allocUnsafe(EventElapsedReplySize);
  encodeEventElapsedReply(body, 0, { ms });
  return { body };
}

export const streamHandlers: HandlerTable = {
  CTX_SYNC(_f, s) {
    return syncReply(s, s.ctx.synchronize(null));
  },

  CTX_SET_LIMIT(f, s) {
    const a = decodeCtxSetLimitArgs(f.body);
    s.ctx.setLimit?.(a.limit, Number(a.value));
  },

  STREAM_CREATE(f, s) {
    const a = decodeStreamCreateArgs(f.body);
    s.createStream(a.handle, a.flags, a.priority);
  },

  STREAM_DESTROY(f, s) {
    s.destroyStream(decodeStreamDestroyArgs(f.body).handle);
  },

  STREAM_SYNC(f, s) {
    return syncReply(s, s.ctx.synchronize(s.stream(f.stream)));
  },

  STREAM_QUERY(f, s) {
    const st = s.stream(f.stream);
    if (s.ctx.queryAsync) return s.ctx.queryAsync(st).then(idleReply);
    return idleReply(s.ctx.query(st));
  },

  STREAM_WAIT_EVENT(f, s) {
    const e = s.event(decodeStreamWaitEventArgs(f.body).event);
    s.ctx.streamWaitEvent(s.stream(f.stream), e);
  },

  EVENT_CREATE(f, s) {
    const a = decodeEventCreateArgs(f.body);
    s.createEvent(a.handle, a.flags);
  },

  EVENT_DESTROY(f, s) {
    s.destroyEvent(decodeEventDestroyArgs(f.body).handle);
  },

  EVENT_RECORD(f, s) {
    const e = s.event(decodeEventRecordArgs(f.body).handle);
    s.ctx.recordEvent(e, s.stream(f.stream));
  },

  EVENT_SYNC(f, s) {
    return syncReply(s, s.ctx.synchronizeEvent(s.event(decodeEventSyncArgs(f.body).handle)));
  },

  EVENT_QUERY(f, s) {
    const e = s.event(decodeEventQueryArgs(f.body).handle);
    if (s.ctx.queryEventAsync) return s.ctx.queryEventAsync(e).then(idleReply);
    return idleReply(s.ctx.queryEvent(e));
  },

  EVENT_ELAPSED(f, s) {
    const a = decodeEventElapsedArgs(f.body);
    const start = s.event(a.start);
    const end = s.event(a.end);
    if (s.ctx.elapsedAsync) return s.ctx.elapsedAsync(start, end).then(elapsedReply);
    return elapsedReply(s.ctx.elapsed(start, end));
  },
};
