/* Host functions (cuLaunchHostFunc, cuStreamAddCallback) without blocking the caller.
 *
 * The server cannot run code in this process, so one helper thread per process (started by the first
 * host function, never otherwise; joined at exit; a forked child starts its own) takes the queued calls in
 * order, waits for the stream to reach each one (a STREAM_SYNC on that stream) and runs it.
 *
 * CUDA also promises that work queued after a host function on the same stream does not start before the
 * function returns. Nothing on the server can wait for this process, so the promise is kept here: until a
 * host function has run, its stream is "gated" and a stream-ordered frame for that stream (launch, copy,
 * memset, event record or wait, synchronize) waits in the calling thread. A function queued on the legacy
 * stream gates every stream, legacy-stream work waits for functions on blocking streams, and a context
 * synchronize (or a stream destroy) waits for every host function. So the caller only
 * blocks when it queues more work behind a pending host function, never for the function alone. */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include "rgpu.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JOIN_TIMEOUT_S 10

struct job {
    CUstream s;
    uint32_t stream;
    CUhostFn fn;
    CUstreamCallback cb;
    void *data;
    struct job *next;
};

/* queue: guarded by q_lock (never taken while holding it and then rgpu_g.lock in the other order) */
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static struct job *head, *tail;
static int started, stopping;
static pthread_t helper;

/* gates: guarded by rgpu_g.lock; rgpu_g.ngates is their total */
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
struct gate { uint32_t stream; int count; int nonblocking; };
static struct gate *gates;
static size_t ngate_slots, cap_gates;

static __thread int on_helper; /* the helper's own syncs must not wait for the gate it holds */

static struct gate *gate_of(uint32_t stream)
{
    for (size_t i = 0; i < ngate_slots; i++)
        if (gates[i].stream == stream) return &gates[i];
    return NULL;
}

static int stream_ordered(uint16_t op)
{
    switch (op) {
    case RGPU_OP_LAUNCH: case RGPU_OP_MEMCPY_HTOD: case RGPU_OP_MEMCPY_DTOH: case RGPU_OP_MEMCPY_DTOD:
    case RGPU_OP_MEMCPY_HTOD_2D: case RGPU_OP_MEMCPY_DTOH_2D: case RGPU_OP_MEMCPY_DTOD_2D: case RGPU_OP_MEMSET:
    case RGPU_OP_MEMCPY_HTOD_LANE: case RGPU_OP_MEMCPY_DTOH_LANE:
    case RGPU_OP_MEMCPY_HTOD_2D_LANE: case RGPU_OP_MEMCPY_DTOH_2D_LANE:
    case RGPU_OP_EVENT_RECORD: case RGPU_OP_STREAM_WAIT_EVENT: case RGPU_OP_STREAM_SYNC: case RGPU_OP_CTX_SYNC:
        return 1;
    case RGPU_OP_STREAM_DESTROY: /* names its stream in the body, so it waits for every pending function: the
                                  * helper still needs the stream to find the point where its function runs */
        return 1;
    default:
        return 0;
    }
}

static int blocked(uint16_t op, uint32_t stream)
{
    if (op == RGPU_OP_CTX_SYNC || op == RGPU_OP_STREAM_DESTROY) return rgpu_g.ngates > 0;
    if (stream == 0) { /* the legacy stream waits for every blocking stream, not for non-blocking ones */
        for (size_t i = 0; i < ngate_slots; i++)
            if (gates[i].count && !gates[i].nonblocking) return 1;
        return 0;
    }
    struct gate *g = gate_of(stream), *legacy = gate_of(0);
    return (g && g->count) || (legacy && legacy->count);
}

void rgpu_hostfn_gate_locked(uint16_t op, uint32_t stream)
{
    if (!rgpu_g.ngates || on_helper || !stream_ordered(op)) return;
    while (rgpu_g.ngates && blocked(op, stream) && !rgpu_g.lost) pthread_cond_wait(&gate_cond, &rgpu_g.lock);
}

int rgpu_hostfn_pending_locked(uint32_t stream)
{
    if (!rgpu_g.ngates) return 0;
    struct gate *g = gate_of(stream);
    return g ? g->count : 0;
}

static void ungate(uint32_t stream)
{
    rgpu_rpc_lock();
    struct gate *g = gate_of(stream);
    if (g && g->count) { g->count--; rgpu_g.ngates--; }
    pthread_cond_broadcast(&gate_cond);
    rgpu_rpc_unlock();
}

static void run(struct job *j)
{
    rgpu_rpc_lock();
    CUresult rc = rgpu_g.lost ? rgpu_g.lost : rgpu_rpc_call_locked(RGPU_OP_STREAM_SYNC, j->stream, NULL, 0, NULL, 0, NULL, NULL, NULL, 0);
    /* The sync may have collected the error of earlier asynchronous work, which the program's own next
     * synchronizing call must still see; a sticky fault or a lost connection repeats by itself. */
    if (rc && rc != rgpu_g.sticky && rc != rgpu_g.lost) rgpu_rpc_defer_error(rc);
    rgpu_rpc_unlock();
    /* cuLaunchHostFunc's function is not called after an error; a stream callback is, with the status */
    if (j->cb) j->cb(j->s, rc, j->data);
    else if (!rc) j->fn(j->data);
    else rgpu_trace("host function on stream %u skipped: CUresult %d", j->stream, (int)rc);
    ungate(j->stream);
}

static void *helper_main(void *arg)
{
    (void)arg;
    on_helper = 1;
    pthread_mutex_lock(&q_lock);
    for (;;) {
        while (!head && !stopping) pthread_cond_wait(&q_cond, &q_lock);
        struct job *j = head;
        if (!j) break;
        head = j->next;
        if (!head) tail = NULL;
        pthread_mutex_unlock(&q_lock);
        run(j);
        free(j);
        pthread_mutex_lock(&q_lock);
    }
    pthread_mutex_unlock(&q_lock);
    return NULL;
}

static CUresult start_locked(void)
{
    if (started) return CUDA_SUCCESS;
    /* signals stay with the program's own threads */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&helper, NULL, helper_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) { rgpu_trace("cannot start the host-function thread: %s", strerror(e)); return CUDA_ERROR_OUT_OF_MEMORY; }
    started = 1;
    return CUDA_SUCCESS;
}

CUresult rgpu_hostfn_enqueue(CUstream s, uint32_t stream, CUhostFn fn, CUstreamCallback cb, void *data)
{
    struct job *j = malloc(sizeof(*j));
    if (!j) return CUDA_ERROR_OUT_OF_MEMORY;
    *j = (struct job){ s, stream, fn, cb, data, NULL };
    rgpu_rpc_lock();
    struct gate *g = gate_of(stream);
    if (!g) {
        if (ngate_slots == cap_gates) {
            size_t cap = cap_gates ? cap_gates * 2 : 8;
            void *n = realloc(gates, cap * sizeof(*gates));
            if (!n) { rgpu_rpc_unlock(); free(j); return CUDA_ERROR_OUT_OF_MEMORY; }
            gates = n;
            cap_gates = cap;
        }
        g = &gates[ngate_slots++];
        *g = (struct gate){ stream, 0, 0 };
    }
    unsigned flags = 0;
    g->nonblocking = stream > 1 && cuStreamGetFlags(s, &flags) == CUDA_SUCCESS && (flags & CU_STREAM_NON_BLOCKING);
    g->count++;
    rgpu_g.ngates++;
    rgpu_rpc_unlock();
    pthread_mutex_lock(&q_lock);
    CUresult rc = stopping ? CUDA_ERROR_DEINITIALIZED : start_locked();
    if (!rc) {
        if (tail) tail->next = j; else head = j;
        tail = j;
        pthread_cond_signal(&q_cond);
    }
    pthread_mutex_unlock(&q_lock);
    if (rc) { ungate(stream); free(j); }
    return rc;
}

/* At exit the queued functions still run (their streams are still there); a function that never returns
 * must not hang the exit for ever, so the join is bounded. */
void rgpu_hostfn_shutdown(void)
{
    pthread_mutex_lock(&q_lock);
    int was = started;
    stopping = 1;
    pthread_cond_signal(&q_cond);
    pthread_mutex_unlock(&q_lock);
    if (!was || pthread_equal(pthread_self(), helper)) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += JOIN_TIMEOUT_S;
    if (pthread_timedjoin_np(helper, NULL, &ts) == ETIMEDOUT) {
        rgpu_trace("a host function is still running at exit; not waiting for it");
        pthread_detach(helper);
    }
}

/* The helper thread does not exist in the child; the parent's queued functions are not the child's. */
void rgpu_hostfn_after_fork(void)
{
    pthread_mutex_init(&q_lock, NULL);
    pthread_cond_init(&q_cond, NULL);
    pthread_cond_init(&gate_cond, NULL);
    while (head) { struct job *n = head->next; free(head); head = n; }
    tail = NULL;
    started = stopping = 0;
    ngate_slots = 0;
    rgpu_g.ngates = 0;
    on_helper = 0;
}
