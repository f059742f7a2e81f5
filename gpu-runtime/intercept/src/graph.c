/* CUDA graphs made by stream capture (cuStreamBeginCapture ... cuStreamEndCapture, cuGraphInstantiate,
 * cuGraphLaunch), as torch.cuda.graphs and cudaStreamBeginCapture programs use them.
 *
 * A graph here is the captured work in program order: kernel launches with their packed parameters,
 * memsets and device copies (kept as the frames they would have been), copies from and to host memory
 * (kept as pointers: a memcpy node reads and writes the host memory when the graph runs), host functions.
 * cuGraphLaunch replays them into the launch stream as ordinary no-reply frames: no server support, no
 * round trip. Program order respects every dependency the capture saw, so running the nodes one after
 * another on one stream is a valid schedule (it gives up concurrency between branches, nothing else).
 *
 * Other streams join a capture the CUDA way, by waiting on an event recorded in it; their work goes into
 * the same graph. Events recorded during capture are dependencies inside the graph, not nodes. Work that
 * has no graph form here (stream-ordered allocation, synchronous copies, 2D copies with host memory)
 * invalidates the capture with CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, and cuStreamEndCapture then answers
 * CUDA_ERROR_STREAM_CAPTURE_INVALIDATED. Building graphs node by node (cuGraphAdd*Node) is not supported. */
#include "rgpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RGPU_MAGIC_GRAPH 0x47524631u
#define RGPU_MAGIC_EXEC 0x47455831u

enum { NODE_FRAME, NODE_HTOD, NODE_DTOH, NODE_HOSTFN };

struct gnode {
    int kind;
    uint16_t op;         /* FRAME: the frame, body then bulk in data */
    uint32_t body_len;
    uint64_t bulk_len;
    uint8_t *data;
    uint64_t dev, n;     /* HTOD/DTOH: device address, size */
    void *host;          /* HTOD/DTOH: host address; HOSTFN: user data */
    CUhostFn fn;
    CUstreamCallback cb;
};

struct gbody {           /* shared by a graph and the executables made from it */
    int refs;
    size_t n, cap;
    struct gnode *nodes;
};

struct rgpu_graph { uint32_t magic; struct gbody *body; };
struct rgpu_gexec { uint32_t magic; struct gbody *body; };

struct rgpu_capture {
    uint64_t id;
    uint32_t origin;
    int mode;
    int invalid;
    struct rgpu_graph *graph;
    uint32_t *streams;   /* joined streams (origin excluded) */
    size_t nstreams, cap_streams;
    uint32_t *events;    /* recorded inside this capture */
    size_t nevents, cap_events;
    struct rgpu_capture *next;
};

static struct rgpu_capture *captures; /* guarded by rgpu_g.lock */
static uint64_t next_capture_id = 1;
static __thread CUstreamCaptureMode thread_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;

#define CHECK_CTX() do { CUresult rc_ = rgpu_context_check(); if (rc_) return rc_; } while (0)

static int push_u32(uint32_t **v, size_t *n, size_t *cap, uint32_t x)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        void *p = realloc(*v, c * sizeof(**v));
        if (!p) return -1;
        *v = p;
        *cap = c;
    }
    (*v)[(*n)++] = x;
    return 0;
}

static int has_u32(const uint32_t *v, size_t n, uint32_t x)
{
    for (size_t i = 0; i < n; i++) if (v[i] == x) return 1;
    return 0;
}

static void body_release(struct gbody *b)
{
    if (!b || --b->refs > 0) return;
    for (size_t i = 0; i < b->n; i++) free(b->nodes[i].data);
    free(b->nodes);
    free(b);
}

static struct rgpu_graph *graph_new(void)
{
    struct rgpu_graph *g = calloc(1, sizeof(*g));
    struct gbody *b = calloc(1, sizeof(*b));
    if (!g || !b) { free(g); free(b); return NULL; }
    b->refs = 1;
    g->magic = RGPU_MAGIC_GRAPH;
    g->body = b;
    return g;
}

static void graph_free(struct rgpu_graph *g)
{
    g->magic = 0;
    body_release(g->body);
    free(g);
}

static struct rgpu_graph *graph_of(CUgraph h)
{
    struct rgpu_graph *g = (struct rgpu_graph *)h;
    return g && g->magic == RGPU_MAGIC_GRAPH ? g : NULL;
}

static struct rgpu_gexec *exec_of(CUgraphExec h)
{
    struct rgpu_gexec *e = (struct rgpu_gexec *)h;
    return e && e->magic == RGPU_MAGIC_EXEC ? e : NULL;
}

static struct gnode *add_node(struct rgpu_capture *c)
{
    struct gbody *b = c->graph->body;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        void *p = realloc(b->nodes, cap * sizeof(*b->nodes));
        if (!p) return NULL;
        b->nodes = p;
        b->cap = cap;
    }
    struct gnode *n = &b->nodes[b->n++];
    memset(n, 0, sizeof(*n));
    return n;
}

/* ---- capture bookkeeping (rgpu_g.lock held) ---- */

struct rgpu_capture *rgpu_graph_capture_of_locked(uint32_t stream)
{
    if (stream == 0) return NULL; /* the legacy stream is never captured */
    for (struct rgpu_capture *c = captures; c; c = c->next)
        if (c->origin == stream || has_u32(c->streams, c->nstreams, stream)) return c;
    return NULL;
}

static struct rgpu_capture *capture_of_event(uint32_t event)
{
    for (struct rgpu_capture *c = captures; c; c = c->next)
        if (has_u32(c->events, c->nevents, event)) return c;
    return NULL;
}

CUresult rgpu_graph_invalidate_locked(struct rgpu_capture *c, const char *why)
{
    if (c->invalid) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    c->invalid = 1;
    rgpu_trace("stream capture %llu invalidated: %s cannot be captured -> CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED",
               (unsigned long long)c->id, why);
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
}

static void forget_event(uint32_t event)
{
    for (struct rgpu_capture *c = captures; c; c = c->next)
        for (size_t i = 0; i < c->nevents; i++)
            if (c->events[i] == event) { c->events[i] = c->events[--c->nevents]; break; }
}

static CUresult record_frame(struct rgpu_capture *c, uint16_t op, const void *body, uint32_t body_len,
                             const void *bulk, uint64_t bulk_len)
{
    uint8_t *data = malloc(body_len + bulk_len ? body_len + bulk_len : 1);
    struct gnode *n = data ? add_node(c) : NULL;
    if (!n) { free(data); return CUDA_ERROR_OUT_OF_MEMORY; }
    if (body_len) memcpy(data, body, body_len);
    if (bulk_len) memcpy(data + body_len, bulk, (size_t)bulk_len);
    n->kind = NODE_FRAME;
    n->op = op;
    n->body_len = body_len;
    n->bulk_len = bulk_len;
    n->data = data;
    return CUDA_SUCCESS;
}

int rgpu_graph_post_hook_locked(uint16_t op, uint32_t stream, const void *body, uint32_t body_len,
                                const void *bulk, uint64_t bulk_len, CUresult *rc)
{
    struct rgpu_capture *c = rgpu_graph_capture_of_locked(stream);
    *rc = CUDA_SUCCESS;
    if (op == RGPU_OP_STREAM_WAIT_EVENT && body_len >= sizeof(rgpu_stream_wait_event_args)) {
        const rgpu_stream_wait_event_args *a = body;
        struct rgpu_capture *owner = capture_of_event(a->event);
        if (owner && owner->invalid) { *rc = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED; return 1; }
        if (owner && !c) {
            if (stream == 0) { *rc = rgpu_graph_invalidate_locked(owner, "a wait of the legacy stream on a captured event"); return 1; }
            if (push_u32(&owner->streams, &owner->nstreams, &owner->cap_streams, stream)) *rc = CUDA_ERROR_OUT_OF_MEMORY;
            return 1; /* the stream joins the capture */
        }
        if (owner == c && c) return 1; /* a dependency inside the graph: replay order already keeps it */
        if (owner) { *rc = CUDA_ERROR_STREAM_CAPTURE_MERGE; return 1; }
    }
    if (op == RGPU_OP_EVENT_RECORD && body_len >= sizeof(rgpu_event_record_args)) {
        const rgpu_event_record_args *a = body;
        forget_event(a->handle); /* a later record replaces the one a capture saw */
        if (!c) return 0;
        if (c->invalid) { *rc = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED; return 1; }
        if (push_u32(&c->events, &c->nevents, &c->cap_events, a->handle)) *rc = CUDA_ERROR_OUT_OF_MEMORY;
        return 1;
    }
    if (!c) return 0;
    if (c->invalid) { *rc = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED; return 1; }
    switch (op) {
    case RGPU_OP_LAUNCH: case RGPU_OP_MEMSET: case RGPU_OP_MEMCPY_DTOD: case RGPU_OP_MEMCPY_DTOD_2D:
    case RGPU_OP_STREAM_WAIT_EVENT: /* on an event recorded outside the capture */
        *rc = record_frame(c, op, body, body_len, bulk, bulk_len);
        return 1;
    default: {
        char what[48];
        snprintf(what, sizeof(what), "operation %u", (unsigned)op);
        *rc = rgpu_graph_invalidate_locked(c, what);
        return 1;
    }
    }
}

int rgpu_graph_record_external_locked(uint16_t op, uint32_t stream, const void *body, uint32_t body_len, CUresult *rc)
{
    struct rgpu_capture *c = rgpu_graph_capture_of_locked(stream);
    if (!c) return 0;
    *rc = c->invalid ? CUDA_ERROR_STREAM_CAPTURE_INVALIDATED : record_frame(c, op, body, body_len, NULL, 0);
    return 1;
}

CUresult rgpu_graph_record_htod_locked(struct rgpu_capture *c, uint64_t dst, const void *src, uint64_t n)
{
    if (c->invalid) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    struct gnode *g = add_node(c);
    if (!g) return CUDA_ERROR_OUT_OF_MEMORY;
    g->kind = NODE_HTOD; g->dev = dst; g->host = (void *)src; g->n = n;
    return CUDA_SUCCESS;
}

CUresult rgpu_graph_record_dtoh_locked(struct rgpu_capture *c, void *dst, uint64_t src, uint64_t n)
{
    if (c->invalid) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    struct gnode *g = add_node(c);
    if (!g) return CUDA_ERROR_OUT_OF_MEMORY;
    g->kind = NODE_DTOH; g->dev = src; g->host = dst; g->n = n;
    return CUDA_SUCCESS;
}

CUresult rgpu_graph_record_hostfn_locked(struct rgpu_capture *c, CUstream s, CUhostFn fn, CUstreamCallback cb, void *data)
{
    if (c->invalid) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    if (cb) return rgpu_graph_invalidate_locked(c, "cuStreamAddCallback"); /* CUDA does not capture it either */
    struct gnode *g = add_node(c);
    if (!g) return CUDA_ERROR_OUT_OF_MEMORY;
    g->kind = NODE_HOSTFN; g->fn = fn; g->host = data;
    return CUDA_SUCCESS;
}

/* A host function queued on a stream, or recorded when the stream is capturing. */
static CUresult host_func_or_record(CUstream s, uint32_t stream, CUhostFn fn, CUstreamCallback cb, void *data)
{
    rgpu_rpc_lock();
    struct rgpu_capture *c = rgpu_g.ncaptures ? rgpu_graph_capture_of_locked(stream) : NULL;
    CUresult rc = c ? rgpu_graph_record_hostfn_locked(c, s, fn, cb, data) : CUDA_SUCCESS;
    rgpu_rpc_unlock();
    return c ? rc : rgpu_hostfn_enqueue(s, stream, fn, cb, data);
}

/* ---- host functions (here because a capture may take them) ---- */

static int stream_ok(CUstream s)
{
    return !s || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD || rgpu_stream_id(s, 0) != 0xffffffffu;
}

static CUresult host_func(CUstream s, CUhostFn fn, void *data, int ptds)
{
    if (!fn) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    return host_func_or_record(s, rgpu_stream_id(s, ptds), fn, NULL, data);
}
RGPU_EXPORT CUresult CUDAAPI cuLaunchHostFunc(CUstream s, CUhostFn fn, void *data) { return host_func(s, fn, data, 0); }
RGPU_EXPORT CUresult CUDAAPI cuLaunchHostFunc_ptsz(CUstream s, CUhostFn fn, void *data) { return host_func(s, fn, data, 1); }

static CUresult stream_callback(CUstream s, CUstreamCallback cb, void *data, unsigned int flags, int ptds)
{
    if (!cb || flags) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    return host_func_or_record(s, rgpu_stream_id(s, ptds), NULL, cb, data);
}
RGPU_EXPORT CUresult CUDAAPI cuStreamAddCallback(CUstream s, CUstreamCallback cb, void *data, unsigned int flags) { return stream_callback(s, cb, data, flags, 0); }
RGPU_EXPORT CUresult CUDAAPI cuStreamAddCallback_ptsz(CUstream s, CUstreamCallback cb, void *data, unsigned int flags) { return stream_callback(s, cb, data, flags, 1); }

/* ---- capture API ---- */

static CUresult begin_capture(CUstream s, CUstreamCaptureMode mode, int ptds)
{
    CHECK_CTX();
    if ((unsigned)mode > CU_STREAM_CAPTURE_MODE_RELAXED) return CUDA_ERROR_INVALID_VALUE;
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    uint32_t id = rgpu_stream_id(s, ptds);
    if (id == 0) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; /* the legacy stream, as in CUDA */
    if (id == 1) {
        /* every thread's per-thread stream is one stream on the server: a capture could not tell them apart */
        rgpu_trace("cuStreamBeginCapture on the per-thread default stream -> CUDA_ERROR_NOT_SUPPORTED");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    struct rgpu_capture *c = calloc(1, sizeof(*c));
    struct rgpu_graph *g = c ? graph_new() : NULL;
    if (!g) { free(c); return CUDA_ERROR_OUT_OF_MEMORY; }
    rgpu_rpc_lock();
    CUresult rc = CUDA_SUCCESS;
    if (rgpu_graph_capture_of_locked(id)) rc = CUDA_ERROR_ILLEGAL_STATE;
    else if (rgpu_hostfn_pending_locked(id)) {
        /* the frames before the capture must not be recorded, and a gated stream may still hold some back */
        rgpu_trace("cuStreamBeginCapture: a host function is still pending on the stream -> CUDA_ERROR_NOT_SUPPORTED");
        rc = CUDA_ERROR_NOT_SUPPORTED;
    } else {
        c->id = next_capture_id++;
        c->origin = id;
        c->mode = mode;
        c->graph = g;
        c->next = captures;
        captures = c;
        rgpu_g.ncaptures++;
    }
    rgpu_rpc_unlock();
    if (rc) { graph_free(g); free(c); }
    return rc;
}
RGPU_EXPORT CUresult CUDAAPI cuStreamBeginCapture(CUstream s) { return begin_capture(s, CU_STREAM_CAPTURE_MODE_GLOBAL, 0); }
RGPU_EXPORT CUresult CUDAAPI cuStreamBeginCapture_ptsz(CUstream s) { return begin_capture(s, CU_STREAM_CAPTURE_MODE_GLOBAL, 1); }
RGPU_EXPORT CUresult CUDAAPI cuStreamBeginCapture_v2(CUstream s, CUstreamCaptureMode mode) { return begin_capture(s, mode, 0); }
RGPU_EXPORT CUresult CUDAAPI cuStreamBeginCapture_v2_ptsz(CUstream s, CUstreamCaptureMode mode) { return begin_capture(s, mode, 1); }

static void capture_free(struct rgpu_capture *c)
{
    free(c->streams);
    free(c->events);
    free(c);
}

static CUresult end_capture(CUstream s, CUgraph *out, int ptds)
{
    if (!out) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    uint32_t id = rgpu_stream_id(s, ptds);
    rgpu_rpc_lock();
    struct rgpu_capture *c = rgpu_graph_capture_of_locked(id), **pp = &captures;
    if (!c) rc = CUDA_ERROR_ILLEGAL_STATE;
    else if (c->origin != id) rc = CUDA_ERROR_STREAM_CAPTURE_UNMATCHED;
    else {
        while (*pp != c) pp = &(*pp)->next;
        *pp = c->next;
        rgpu_g.ncaptures--;
    }
    rgpu_rpc_unlock();
    if (rc) return rc;
    *out = NULL;
    if (c->invalid) { graph_free(c->graph); rc = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED; }
    else *out = (CUgraph)c->graph;
    capture_free(c);
    return rc;
}
RGPU_EXPORT CUresult CUDAAPI cuStreamEndCapture(CUstream s, CUgraph *g) { return end_capture(s, g, 0); }
RGPU_EXPORT CUresult CUDAAPI cuStreamEndCapture_ptsz(CUstream s, CUgraph *g) { return end_capture(s, g, 1); }

static CUresult capture_info(CUstream s, CUstreamCaptureStatus *status, cuuint64_t *id_out, CUgraph *graph_out,
                             const CUgraphNode **deps, const CUgraphEdgeData **edges, size_t *ndeps, int ptds)
{
    if (!status) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    rgpu_rpc_lock();
    struct rgpu_capture *c = rgpu_g.ncaptures ? rgpu_graph_capture_of_locked(rgpu_stream_id(s, ptds)) : NULL;
    *status = !c ? CU_STREAM_CAPTURE_STATUS_NONE : c->invalid ? CU_STREAM_CAPTURE_STATUS_INVALIDATED : CU_STREAM_CAPTURE_STATUS_ACTIVE;
    if (c && id_out) *id_out = c->id;
    if (c && graph_out) *graph_out = (CUgraph)c->graph;
    /* dependencies are not tracked: the graph is a sequence (see the header comment) */
    if (c && deps) *deps = NULL;
    if (c && edges) *edges = NULL;
    if (c && ndeps) *ndeps = 0;
    rgpu_rpc_unlock();
    return CUDA_SUCCESS;
}
RGPU_EXPORT CUresult CUDAAPI cuStreamIsCapturing(CUstream s, CUstreamCaptureStatus *st) { return capture_info(s, st, NULL, NULL, NULL, NULL, NULL, 0); }
RGPU_EXPORT CUresult CUDAAPI cuStreamIsCapturing_ptsz(CUstream s, CUstreamCaptureStatus *st) { return capture_info(s, st, NULL, NULL, NULL, NULL, NULL, 1); }
RGPU_EXPORT CUresult CUDAAPI cuStreamGetCaptureInfo(CUstream s, CUstreamCaptureStatus *st, cuuint64_t *id)
{ return capture_info(s, st, id, NULL, NULL, NULL, NULL, 0); }
RGPU_EXPORT CUresult CUDAAPI cuStreamGetCaptureInfo_ptsz(CUstream s, CUstreamCaptureStatus *st, cuuint64_t *id)
{ return capture_info(s, st, id, NULL, NULL, NULL, NULL, 1); }
RGPU_EXPORT CUresult CUDAAPI cuStreamGetCaptureInfo_v2(CUstream s, CUstreamCaptureStatus *st, cuuint64_t *id, CUgraph *g,
                                                       const CUgraphNode **deps, size_t *n)
{ return capture_info(s, st, id, g, deps, NULL, n, 0); }
RGPU_EXPORT CUresult CUDAAPI cuStreamGetCaptureInfo_v2_ptsz(CUstream s, CUstreamCaptureStatus *st, cuuint64_t *id, CUgraph *g,
                                                            const CUgraphNode **deps, size_t *n)
{ return capture_info(s, st, id, g, deps, NULL, n, 1); }
RGPU_EXPORT CUresult CUDAAPI cuStreamGetCaptureInfo_v3(CUstream s, CUstreamCaptureStatus *st, cuuint64_t *id, CUgraph *g,
                                                       const CUgraphNode **deps, const CUgraphEdgeData **e, size_t *n)
{ return capture_info(s, st, id, g, deps, e, n, 0); }
RGPU_EXPORT CUresult CUDAAPI cuStreamGetCaptureInfo_v3_ptsz(CUstream s, CUstreamCaptureStatus *st, cuuint64_t *id, CUgraph *g,
                                                            const CUgraphNode **deps, const CUgraphEdgeData **e, size_t *n)
{ return capture_info(s, st, id, g, deps, e, n, 1); }

/* The mode is only consulted by CUDA to reject unsafe calls during a global capture; it is kept per
 * thread so save/restore pairs work, and not enforced. */
RGPU_EXPORT CUresult CUDAAPI cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode *mode)
{
    if (!mode || (unsigned)*mode > CU_STREAM_CAPTURE_MODE_RELAXED) return CUDA_ERROR_INVALID_VALUE;
    CUstreamCaptureMode old = thread_mode;
    thread_mode = *mode;
    *mode = old;
    return CUDA_SUCCESS;
}

/* ---- graphs and executables ---- */

RGPU_EXPORT CUresult CUDAAPI cuGraphCreate(CUgraph *out, unsigned int flags)
{
    if (!out || flags) return CUDA_ERROR_INVALID_VALUE;
    CHECK_CTX();
    struct rgpu_graph *g = graph_new();
    if (!g) return CUDA_ERROR_OUT_OF_MEMORY;
    *out = (CUgraph)g;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuGraphDestroy(CUgraph h)
{
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    struct rgpu_graph *g = graph_of(h);
    if (!g) return CUDA_ERROR_INVALID_VALUE;
    rgpu_rpc_lock();
    for (struct rgpu_capture *c = captures; c; c = c->next)
        if (c->graph == g) rc = CUDA_ERROR_ILLEGAL_STATE; /* still being captured into */
    if (!rc) graph_free(g);
    rgpu_rpc_unlock();
    return rc;
}

RGPU_EXPORT CUresult CUDAAPI cuGraphGetNodes(CUgraph h, CUgraphNode *nodes, size_t *num)
{
    if (!num) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    struct rgpu_graph *g = graph_of(h);
    if (!g) return CUDA_ERROR_INVALID_VALUE;
    rgpu_rpc_lock();
    struct gbody *b = g->body;
    if (nodes) {
        /* opaque handles: no node API accepts them (cuGraphNode* answer CUDA_ERROR_NOT_SUPPORTED) */
        for (size_t i = 0; i < *num; i++) nodes[i] = i < b->n ? (CUgraphNode)&b->nodes[i] : NULL;
    }
    *num = b->n;
    rgpu_rpc_unlock();
    return CUDA_SUCCESS;
}

static CUresult instantiate(CUgraphExec *out, CUgraph h, unsigned long long flags)
{
    if (!out) return CUDA_ERROR_INVALID_VALUE;
    CHECK_CTX();
    struct rgpu_graph *g = graph_of(h);
    if (!g) return CUDA_ERROR_INVALID_VALUE;
    if (flags & CUDA_GRAPH_INSTANTIATE_FLAG_DEVICE_LAUNCH) {
        rgpu_trace("cuGraphInstantiate: device-launchable graphs -> CUDA_ERROR_NOT_SUPPORTED");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (flags & ~(unsigned long long)(CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH | CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD |
                                      CUDA_GRAPH_INSTANTIATE_FLAG_USE_NODE_PRIORITY))
        return CUDA_ERROR_INVALID_VALUE;
    struct rgpu_gexec *e = calloc(1, sizeof(*e));
    if (!e) return CUDA_ERROR_OUT_OF_MEMORY;
    rgpu_rpc_lock();
    for (struct rgpu_capture *c = captures; c; c = c->next)
        if (c->graph == g) { rgpu_rpc_unlock(); free(e); return CUDA_ERROR_ILLEGAL_STATE; } /* still growing */
    e->magic = RGPU_MAGIC_EXEC;
    e->body = g->body;
    g->body->refs++; /* the graph may be destroyed before its executables */
    rgpu_rpc_unlock();
    *out = (CUgraphExec)e;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuGraphInstantiateWithFlags(CUgraphExec *out, CUgraph g, unsigned long long flags)
{
    return instantiate(out, g, flags);
}

RGPU_EXPORT CUresult CUDAAPI cuGraphInstantiate(CUgraphExec *out, CUgraph g, CUgraphNode *err, char *log, size_t logsize)
{
    if (log && logsize) log[0] = 0;
    if (err) *err = NULL;
    return instantiate(out, g, 0);
}
RGPU_EXPORT CUresult CUDAAPI cuGraphInstantiate_v2(CUgraphExec *out, CUgraph g, CUgraphNode *err, char *log, size_t logsize)
{
    return cuGraphInstantiate(out, g, err, log, logsize);
}

static CUresult instantiate_params(CUgraphExec *out, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS *p)
{
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    p->hErrNode_out = NULL;
    CUresult rc = instantiate(out, g, p->flags);
    p->result_out = rc ? CUDA_GRAPH_INSTANTIATE_ERROR : CUDA_GRAPH_INSTANTIATE_SUCCESS;
    return rc;
}
RGPU_EXPORT CUresult CUDAAPI cuGraphInstantiateWithParams(CUgraphExec *out, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS *p) { return instantiate_params(out, g, p); }
RGPU_EXPORT CUresult CUDAAPI cuGraphInstantiateWithParams_ptsz(CUgraphExec *out, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS *p) { return instantiate_params(out, g, p); }

RGPU_EXPORT CUresult CUDAAPI cuGraphExecDestroy(CUgraphExec h)
{
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    struct rgpu_gexec *e = exec_of(h);
    if (!e) return CUDA_ERROR_INVALID_VALUE;
    rgpu_rpc_lock();
    e->magic = 0;
    body_release(e->body);
    rgpu_rpc_unlock();
    free(e);
    return CUDA_SUCCESS;
}

/* Replays the nodes into the stream through the ordinary paths, so a launch into a capturing stream is
 * itself captured and a pending host function gates it like any other work. */
static CUresult graph_launch(CUgraphExec h, CUstream s, int ptds)
{
    CHECK_CTX();
    struct rgpu_gexec *e = exec_of(h);
    if (!e) return CUDA_ERROR_INVALID_VALUE;
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    uint32_t id = rgpu_stream_id(s, ptds);
    struct gbody *b = e->body; /* nodes never change after capture; the exec holds a reference */
    CUresult rc = CUDA_SUCCESS;
    for (size_t i = 0; !rc && i < b->n; i++) {
        const struct gnode *n = &b->nodes[i];
        switch (n->kind) {
        case NODE_FRAME: /* a run of frames under one lock acquisition */
            rgpu_rpc_lock();
            for (;;) {
                rc = rgpu_rpc_post_locked(n->op, id, n->data, n->body_len, n->data + n->body_len, n->bulk_len);
                if (rc || i + 1 >= b->n || b->nodes[i + 1].kind != NODE_FRAME) break;
                n = &b->nodes[++i];
            }
            rgpu_rpc_unlock();
            break;
        case NODE_HTOD: rc = rgpu_memory_htod(n->dev, n->host, n->n, id); break;
        case NODE_DTOH: rc = rgpu_memory_dtoh_async(n->host, n->dev, n->n, id); break;
        case NODE_HOSTFN: rc = host_func_or_record(s, id, n->fn, NULL, n->host); break;
        }
    }
    return rc;
}
RGPU_EXPORT CUresult CUDAAPI cuGraphLaunch(CUgraphExec h, CUstream s) { return graph_launch(h, s, 0); }
RGPU_EXPORT CUresult CUDAAPI cuGraphLaunch_ptsz(CUgraphExec h, CUstream s) { return graph_launch(h, s, 1); }

/* Uploading has nothing to do: the nodes live here until launch. */
static CUresult graph_upload(CUgraphExec h, CUstream s)
{
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    if (!exec_of(h)) return CUDA_ERROR_INVALID_VALUE;
    return stream_ok(s) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}
RGPU_EXPORT CUresult CUDAAPI cuGraphUpload(CUgraphExec h, CUstream s) { return graph_upload(h, s); }
RGPU_EXPORT CUresult CUDAAPI cuGraphUpload_ptsz(CUgraphExec h, CUstream s) { return graph_upload(h, s); }

/* The captures in progress belonged to the parent's streams. */
void rgpu_graph_after_fork(void)
{
    captures = NULL;
    rgpu_g.ncaptures = 0;
}
