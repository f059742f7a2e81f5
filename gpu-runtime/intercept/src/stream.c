/* cuStream* and cuEvent*: handles are minted here, so creating, recording and destroying cost no
 * round trip; only synchronize, query and elapsed-time wait for the server. */
#include "rgpu.h"

#include <cudaProfiler.h>

#include <stdlib.h>
#include <string.h>

#define CHECK_CTX() do { CUresult rc_ = rgpu_context_check(); if (rc_) return rc_; } while (0)

uint32_t rgpu_stream_id(CUstream s, int ptds)
{
    if (!s) return ptds ? 1 : 0;
    if (s == CU_STREAM_LEGACY) return 0;
    if (s == CU_STREAM_PER_THREAD) return 1;
    struct rgpu_stream *st = (struct rgpu_stream *)s;
    return st->magic == RGPU_MAGIC_STREAM ? st->id : 0xffffffffu; /* the server rejects the bad handle */
}

struct rgpu_event *rgpu_event_of(CUevent e)
{
    struct rgpu_event *ev = (struct rgpu_event *)e;
    return ev && ev->magic == RGPU_MAGIC_EVENT ? ev : NULL;
}

static int stream_ok(CUstream s)
{
    return !s || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD || ((struct rgpu_stream *)s)->magic == RGPU_MAGIC_STREAM;
}

static CUresult post(uint16_t op, uint32_t stream, const void *body, uint32_t len)
{
    rgpu_rpc_lock();
    CUresult rc = rgpu_rpc_post_locked(op, stream, body, len, NULL, 0);
    rgpu_rpc_unlock();
    return rc;
}

static CUresult call(uint16_t op, uint32_t stream, const void *body, uint32_t len, void *reply_bulk, uint64_t cap)
{
    rgpu_rpc_lock();
    uint8_t *reply = NULL;
    uint32_t rlen = 0;
    CUresult rc = rgpu_rpc_call_locked(op, stream, body, len, NULL, 0, reply_bulk ? &reply : NULL, &rlen, NULL, 0);
    rgpu_rpc_unlock();
    if (reply_bulk && reply) {
        if (rlen >= cap) memcpy(reply_bulk, reply, (size_t)cap);
        else rc = rc ? rc : CUDA_ERROR_UNKNOWN;
    }
    free(reply);
    return rc;
}

/* ---- streams ---- */

RGPU_EXPORT CUresult CUDAAPI cuStreamCreateWithPriority(CUstream *ph, unsigned int flags, int priority)
{
    if (!ph) return CUDA_ERROR_INVALID_VALUE;
    CHECK_CTX();
    struct rgpu_stream *s = calloc(1, sizeof(*s));
    if (!s) return CUDA_ERROR_OUT_OF_MEMORY;
    if (priority > 0) priority = 0;
    if (priority < -5) priority = -5;
    s->magic = RGPU_MAGIC_STREAM;
    s->flags = flags;
    s->priority = priority;
    rgpu_rpc_lock();
    s->id = rgpu_g.next_stream++;
    rgpu_stream_create_args a = { s->id, flags, priority };
    CUresult rc = rgpu_rpc_post_locked(RGPU_OP_STREAM_CREATE, 0, &a, sizeof(a), NULL, 0);
    rgpu_rpc_unlock();
    if (rc) { free(s); return rc; }
    *ph = (CUstream)s;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuStreamCreate(CUstream *ph, unsigned int flags) { return cuStreamCreateWithPriority(ph, flags, 0); }

RGPU_EXPORT CUresult CUDAAPI cuStreamDestroy_v2(CUstream h)
{
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    struct rgpu_stream *s = (struct rgpu_stream *)h;
    if (!s || s == (void *)CU_STREAM_LEGACY || s == (void *)CU_STREAM_PER_THREAD || s->magic != RGPU_MAGIC_STREAM)
        return CUDA_ERROR_INVALID_HANDLE;
    rgpu_stream_destroy_args a = { s->id };
    rc = post(RGPU_OP_STREAM_DESTROY, 0, &a, sizeof(a));
    s->magic = 0;
    free(s);
    return rc;
}
RGPU_EXPORT CUresult CUDAAPI cuStreamDestroy(CUstream h) { return cuStreamDestroy_v2(h); }

/* STREAM_SYNC / STREAM_QUERY: a bodiless request on the stream, answered with its result. */
static CUresult stream_call(uint16_t op, CUstream s, int ptds)
{
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    uint32_t id = rgpu_stream_id(s, ptds);
    if (rgpu_g.ncaptures || rgpu_g.ngates) {
        rgpu_rpc_lock();
        struct rgpu_capture *c = rgpu_g.ncaptures ? rgpu_graph_capture_of_locked(id) : NULL;
        /* waiting for a capturing stream is illegal in CUDA and ends the capture */
        if (c) rc = rgpu_graph_invalidate_locked(c, "synchronizing or querying the capturing stream");
        /* a host function not yet run is work not yet done (a sync waits for it in rpc) */
        else if (op == RGPU_OP_STREAM_QUERY && rgpu_hostfn_pending_locked(id)) rc = CUDA_ERROR_NOT_READY;
        rgpu_rpc_unlock();
        if (rc) return rc;
    }
    return call(op, id, NULL, 0, NULL, 0);
}
RGPU_EXPORT CUresult CUDAAPI cuStreamSynchronize(CUstream s) { return stream_call(RGPU_OP_STREAM_SYNC, s, 0); }
RGPU_EXPORT CUresult CUDAAPI cuStreamSynchronize_ptsz(CUstream s) { return stream_call(RGPU_OP_STREAM_SYNC, s, 1); }
RGPU_EXPORT CUresult CUDAAPI cuStreamQuery(CUstream s) { return stream_call(RGPU_OP_STREAM_QUERY, s, 0); }
RGPU_EXPORT CUresult CUDAAPI cuStreamQuery_ptsz(CUstream s) { return stream_call(RGPU_OP_STREAM_QUERY, s, 1); }

/* The _EXTERNAL flags make a captured record or wait a node of the graph (run at every launch) instead
 * of a dependency inside it; outside a capture they change nothing. */
static CUresult post_maybe_external(uint16_t op, uint32_t stream, const void *body, uint32_t len, int external)
{
    rgpu_rpc_lock();
    CUresult rc;
    if (!(external && rgpu_g.ncaptures && rgpu_graph_record_external_locked(op, stream, body, len, &rc)))
        rc = rgpu_rpc_post_locked(op, stream, body, len, NULL, 0);
    rgpu_rpc_unlock();
    return rc;
}

static CUresult stream_wait(CUstream s, CUevent e, unsigned flags, int ptds)
{
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    if (flags & ~(unsigned)CU_EVENT_WAIT_EXTERNAL) return CUDA_ERROR_INVALID_VALUE;
    struct rgpu_event *ev = rgpu_event_of(e);
    if (!ev || !stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    rgpu_stream_wait_event_args a = { ev->id };
    return post_maybe_external(RGPU_OP_STREAM_WAIT_EVENT, rgpu_stream_id(s, ptds), &a, sizeof(a), flags & CU_EVENT_WAIT_EXTERNAL);
}
RGPU_EXPORT CUresult CUDAAPI cuStreamWaitEvent(CUstream s, CUevent e, unsigned int flags) { return stream_wait(s, e, flags, 0); }
RGPU_EXPORT CUresult CUDAAPI cuStreamWaitEvent_ptsz(CUstream s, CUevent e, unsigned int flags) { return stream_wait(s, e, flags, 1); }

static CUresult stream_flags(CUstream s, unsigned int *flags)
{
    if (!flags) return CUDA_ERROR_INVALID_VALUE;
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    *flags = s && s != CU_STREAM_LEGACY && s != CU_STREAM_PER_THREAD ? ((struct rgpu_stream *)s)->flags : 0;
    return CUDA_SUCCESS;
}
RGPU_EXPORT CUresult CUDAAPI cuStreamGetFlags(CUstream s, unsigned int *f) { return stream_flags(s, f); }
RGPU_EXPORT CUresult CUDAAPI cuStreamGetFlags_ptsz(CUstream s, unsigned int *f) { return stream_flags(s, f); }

static CUresult stream_priority(CUstream s, int *p)
{
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    *p = s && s != CU_STREAM_LEGACY && s != CU_STREAM_PER_THREAD ? ((struct rgpu_stream *)s)->priority : 0;
    return CUDA_SUCCESS;
}
RGPU_EXPORT CUresult CUDAAPI cuStreamGetPriority(CUstream s, int *p) { return stream_priority(s, p); }
RGPU_EXPORT CUresult CUDAAPI cuStreamGetPriority_ptsz(CUstream s, int *p) { return stream_priority(s, p); }

static CUresult stream_ctx(CUstream s, CUcontext *pctx)
{
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    *pctx = (CUcontext)rgpu_context_primary(0);
    return CUDA_SUCCESS;
}
RGPU_EXPORT CUresult CUDAAPI cuStreamGetCtx(CUstream s, CUcontext *p) { return stream_ctx(s, p); }
RGPU_EXPORT CUresult CUDAAPI cuStreamGetCtx_ptsz(CUstream s, CUcontext *p) { return stream_ctx(s, p); }

static CUresult stream_id(CUstream s, unsigned long long *id, int ptds)
{
    if (!id) return CUDA_ERROR_INVALID_VALUE;
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    *id = rgpu_stream_id(s, ptds);
    return CUDA_SUCCESS;
}
RGPU_EXPORT CUresult CUDAAPI cuStreamGetId(CUstream s, unsigned long long *id) { return stream_id(s, id, 0); }
RGPU_EXPORT CUresult CUDAAPI cuStreamGetId_ptsz(CUstream s, unsigned long long *id) { return stream_id(s, id, 1); }

/* ---- events ---- */

RGPU_EXPORT CUresult CUDAAPI cuEventCreate(CUevent *ph, unsigned int flags)
{
    if (!ph) return CUDA_ERROR_INVALID_VALUE;
    CHECK_CTX();
    struct rgpu_event *e = calloc(1, sizeof(*e));
    if (!e) return CUDA_ERROR_OUT_OF_MEMORY;
    e->magic = RGPU_MAGIC_EVENT;
    e->flags = flags;
    rgpu_rpc_lock();
    e->id = rgpu_g.next_event++;
    rgpu_event_create_args a = { e->id, flags };
    CUresult rc = rgpu_rpc_post_locked(RGPU_OP_EVENT_CREATE, 0, &a, sizeof(a), NULL, 0);
    rgpu_rpc_unlock();
    if (rc) { free(e); return rc; }
    *ph = (CUevent)e;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuEventDestroy_v2(CUevent h)
{
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    struct rgpu_event *e = rgpu_event_of(h);
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    rgpu_event_destroy_args a = { e->id };
    rc = post(RGPU_OP_EVENT_DESTROY, 0, &a, sizeof(a));
    e->magic = 0;
    free(e);
    return rc;
}
RGPU_EXPORT CUresult CUDAAPI cuEventDestroy(CUevent h) { return cuEventDestroy_v2(h); }

static CUresult event_record(CUevent h, CUstream s, unsigned flags, int ptds)
{
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    if (flags & ~(unsigned)CU_EVENT_RECORD_EXTERNAL) return CUDA_ERROR_INVALID_VALUE;
    struct rgpu_event *e = rgpu_event_of(h);
    if (!e || !stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    rgpu_event_record_args a = { e->id };
    return post_maybe_external(RGPU_OP_EVENT_RECORD, rgpu_stream_id(s, ptds), &a, sizeof(a), flags & CU_EVENT_RECORD_EXTERNAL);
}
RGPU_EXPORT CUresult CUDAAPI cuEventRecord(CUevent e, CUstream s) { return event_record(e, s, 0, 0); }
RGPU_EXPORT CUresult CUDAAPI cuEventRecord_ptsz(CUevent e, CUstream s) { return event_record(e, s, 0, 1); }
RGPU_EXPORT CUresult CUDAAPI cuEventRecordWithFlags(CUevent e, CUstream s, unsigned int f) { return event_record(e, s, f, 0); }
RGPU_EXPORT CUresult CUDAAPI cuEventRecordWithFlags_ptsz(CUevent e, CUstream s, unsigned int f) { return event_record(e, s, f, 1); }

RGPU_EXPORT CUresult CUDAAPI cuEventSynchronize(CUevent h)
{
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    struct rgpu_event *e = rgpu_event_of(h);
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    rgpu_event_sync_args a = { e->id };
    return call(RGPU_OP_EVENT_SYNC, 0, &a, sizeof(a), NULL, 0);
}

RGPU_EXPORT CUresult CUDAAPI cuEventQuery(CUevent h)
{
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    struct rgpu_event *e = rgpu_event_of(h);
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    rgpu_event_query_args a = { e->id };
    return call(RGPU_OP_EVENT_QUERY, 0, &a, sizeof(a), NULL, 0);
}

RGPU_EXPORT CUresult CUDAAPI cuEventElapsedTime_v2(float *ms, CUevent start, CUevent end)
{
    if (!ms) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    struct rgpu_event *a = rgpu_event_of(start), *b = rgpu_event_of(end);
    if (!a || !b) return CUDA_ERROR_INVALID_HANDLE;
    if ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING) return CUDA_ERROR_INVALID_HANDLE;
    rgpu_event_elapsed_args args = { a->id, b->id };
    rgpu_event_elapsed_reply r = { 0 };
    rc = call(RGPU_OP_EVENT_ELAPSED, 0, &args, sizeof(args), &r, sizeof(r));
    if (!rc) *ms = r.ms;
    return rc;
}
RGPU_EXPORT CUresult CUDAAPI cuEventElapsedTime(float *ms, CUevent start, CUevent end) { return cuEventElapsedTime_v2(ms, start, end); }

/* ---- hints and tools that have no remote effect ---- */

/* Stream attributes are cache-persistence and scheduling hints: accepted, not forwarded (traced). */
static CUresult stream_set_attr(CUstream s, CUstreamAttrID attr, const CUstreamAttrValue *v)
{
    if (!v) return CUDA_ERROR_INVALID_VALUE;
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    rgpu_trace("cuStreamSetAttribute(%d): hint ignored", (int)attr);
    return CUDA_SUCCESS;
}
static CUresult stream_get_attr(CUstream s, CUstreamAttrID attr, CUstreamAttrValue *v)
{
    if (!v) return CUDA_ERROR_INVALID_VALUE;
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    memset(v, 0, sizeof(*v));
    return CUDA_SUCCESS;
}
RGPU_EXPORT CUresult CUDAAPI cuStreamSetAttribute(CUstream s, CUstreamAttrID a, const CUstreamAttrValue *v) { return stream_set_attr(s, a, v); }
RGPU_EXPORT CUresult CUDAAPI cuStreamSetAttribute_ptsz(CUstream s, CUstreamAttrID a, const CUstreamAttrValue *v) { return stream_set_attr(s, a, v); }
RGPU_EXPORT CUresult CUDAAPI cuStreamGetAttribute(CUstream s, CUstreamAttrID a, CUstreamAttrValue *v) { return stream_get_attr(s, a, v); }
RGPU_EXPORT CUresult CUDAAPI cuStreamGetAttribute_ptsz(CUstream s, CUstreamAttrID a, CUstreamAttrValue *v) { return stream_get_attr(s, a, v); }

RGPU_EXPORT CUresult CUDAAPI cuCtxResetPersistingL2Cache(void) { return rgpu_context_check(); }

/* Profiling brackets: the remote device is not profiled from here; succeed so programs that bracket their
 * region of interest keep working. */
RGPU_EXPORT CUresult CUDAAPI cuProfilerStart(void) { return rgpu_rpc_ready(); }
RGPU_EXPORT CUresult CUDAAPI cuProfilerStop(void) { return rgpu_rpc_ready(); }
