/* cuCtx* and cuDevicePrimaryCtx*. Every context shares the process's one remote session; a context is
 * local bookkeeping (current-context stack per thread, limits, flags). */
#include "rgpu.h"

#include <stdlib.h>
#include <string.h>

#define STACK_MAX 32

static struct rgpu_ctx primary = { .magic = RGPU_MAGIC_CTX, .device = 0, .primary = 1 };
static __thread struct rgpu_ctx *stack[STACK_MAX];
static __thread int depth;

static void limits_default(struct rgpu_ctx *c)
{
    memset(c->limits, 0, sizeof(c->limits));
    c->limits[CU_LIMIT_STACK_SIZE] = 1024;
    c->limits[CU_LIMIT_PRINTF_FIFO_SIZE] = 1 << 20;
    c->limits[CU_LIMIT_MALLOC_HEAP_SIZE] = 8 << 20;
    c->limits[CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH] = 2;
    c->limits[CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT] = 2048;
    c->limits[CU_LIMIT_MAX_L2_FETCH_GRANULARITY] = 64;
}

static int valid(CUcontext c)
{
    return c && ((struct rgpu_ctx *)c)->magic == RGPU_MAGIC_CTX;
}

struct rgpu_ctx *rgpu_context_current(void) { return depth ? stack[depth - 1] : NULL; }

struct rgpu_ctx *rgpu_context_primary(int dev)
{
    (void)dev;
    if (!primary.limits[CU_LIMIT_STACK_SIZE]) limits_default(&primary);
    return &primary;
}

CUresult rgpu_context_check(void)
{
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    return depth && stack[depth - 1] ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

CUresult rgpu_context_stale(void)
{
    struct rgpu_ctx *c = rgpu_context_current();
    return c && c->session != rgpu_g.session_gen ? rgpu_g.stale_error : CUDA_SUCCESS;
}

void rgpu_context_after_fork(void)
{
    primary.refcount = 0;
    primary.session = rgpu_g.session_gen;
}

#define CHECK_INIT() do { CUresult rc_ = rgpu_rpc_ready(); if (rc_ && rgpu_g.init_state != 1) return rc_; } while (0)

RGPU_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    CHECK_INIT();
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    struct rgpu_ctx *c = rgpu_context_primary(dev);
    __atomic_add_fetch(&c->refcount, 1, __ATOMIC_SEQ_CST);
    *pctx = (CUcontext)c;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    CHECK_INIT();
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    struct rgpu_ctx *c = rgpu_context_primary(dev);
    if (__atomic_load_n(&c->refcount, __ATOMIC_SEQ_CST) <= 0) return CUDA_ERROR_INVALID_CONTEXT;
    __atomic_sub_fetch(&c->refcount, 1, __ATOMIC_SEQ_CST);
    return CUDA_SUCCESS;
}
RGPU_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxRelease(CUdevice dev) { return cuDevicePrimaryCtxRelease_v2(dev); }

RGPU_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
    CHECK_INIT();
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    struct rgpu_ctx *c = rgpu_context_primary(dev);
    /* A reset of a faulted primary context clears the fault, as on a GPU: a fresh session. */
    if (rgpu_g.sticky || c->session != rgpu_g.session_gen) {
        CUresult rc = rgpu_g.sticky ? rgpu_rpc_renew() : CUDA_SUCCESS;
        if (rc) return rc;
        c->session = rgpu_g.session_gen;
    }
    /* A reset destroys the context's memory, as on a GPU; cudart unloads its libraries itself. */
    rgpu_rpc_lock();
    rgpu_memory_free_all_locked();
    CUresult rc = rgpu_rpc_call_locked(RGPU_OP_CTX_SYNC, 0, NULL, 0, NULL, 0, NULL, NULL, NULL, 0);
    rgpu_rpc_unlock();
    (void)rc;
    __atomic_store_n(&c->refcount, 0, __ATOMIC_SEQ_CST);
    c->flags = 0;
    limits_default(c);
    return CUDA_SUCCESS;
}
RGPU_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxReset(CUdevice dev) { return cuDevicePrimaryCtxReset_v2(dev); }

RGPU_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
    if (!flags || !active) return CUDA_ERROR_INVALID_VALUE;
    CHECK_INIT();
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    struct rgpu_ctx *c = rgpu_context_primary(dev);
    *flags = c->flags;
    *active = __atomic_load_n(&c->refcount, __ATOMIC_SEQ_CST) > 0;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags)
{
    CHECK_INIT();
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    rgpu_context_primary(dev)->flags = flags;
    return CUDA_SUCCESS;
}
RGPU_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags) { return cuDevicePrimaryCtxSetFlags_v2(dev, flags); }

RGPU_EXPORT CUresult CUDAAPI cuCtxSetCurrent(CUcontext ctx)
{
    CHECK_INIT();
    if (ctx && !valid(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
    if (!ctx) { if (depth) depth--; return CUDA_SUCCESS; }
    if (!depth) depth = 1;
    stack[depth - 1] = (struct rgpu_ctx *)ctx;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuCtxGetCurrent(CUcontext *pctx)
{
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    CHECK_INIT();
    *pctx = (CUcontext)rgpu_context_current();
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuCtxPushCurrent_v2(CUcontext ctx)
{
    CHECK_INIT();
    if (!valid(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
    if (depth >= STACK_MAX) return CUDA_ERROR_OUT_OF_MEMORY;
    stack[depth++] = (struct rgpu_ctx *)ctx;
    return CUDA_SUCCESS;
}
RGPU_EXPORT CUresult CUDAAPI cuCtxPushCurrent(CUcontext ctx) { return cuCtxPushCurrent_v2(ctx); }

RGPU_EXPORT CUresult CUDAAPI cuCtxPopCurrent_v2(CUcontext *pctx)
{
    CHECK_INIT();
    if (!depth) return CUDA_ERROR_INVALID_CONTEXT;
    struct rgpu_ctx *c = stack[--depth];
    if (pctx) *pctx = (CUcontext)c;
    return CUDA_SUCCESS;
}
RGPU_EXPORT CUresult CUDAAPI cuCtxPopCurrent(CUcontext *pctx) { return cuCtxPopCurrent_v2(pctx); }

static CUresult create(CUcontext *pctx, unsigned flags, CUdevice dev)
{
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    CHECK_INIT();
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    /* A fault ends the faulting context only, in CUDA: the new context gets a fresh session. */
    if (rgpu_g.sticky) {
        CUresult rc = rgpu_rpc_renew();
        if (rc) return rc;
    }
    struct rgpu_ctx *c = calloc(1, sizeof(*c));
    if (!c) return CUDA_ERROR_OUT_OF_MEMORY;
    c->magic = RGPU_MAGIC_CTX;
    c->session = rgpu_g.session_gen;
    c->refcount = 1;
    c->flags = flags;
    limits_default(c);
    if (depth >= STACK_MAX) { free(c); return CUDA_ERROR_OUT_OF_MEMORY; }
    stack[depth++] = c; /* a created context becomes current (pushed), as in the driver */
    *pctx = (CUcontext)c;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev) { return create(pctx, flags, dev); }
RGPU_EXPORT CUresult CUDAAPI cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *p, int n, unsigned int flags, CUdevice dev)
{
    (void)p; (void)n;
    return create(pctx, flags, dev);
}
RGPU_EXPORT CUresult CUDAAPI cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *p, unsigned int flags, CUdevice dev)
{
    if (p && (p->execAffinityParams || p->cigParams)) rgpu_trace("cuCtxCreate_v4: affinity/CIG parameters ignored");
    return create(pctx, flags, dev);
}

RGPU_EXPORT CUresult CUDAAPI cuCtxDestroy_v2(CUcontext ctx)
{
    CHECK_INIT();
    if (!valid(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
    struct rgpu_ctx *c = (struct rgpu_ctx *)ctx;
    if (c->primary) return CUDA_ERROR_INVALID_CONTEXT;
    for (int i = 0; i < depth; i++)
        if (stack[i] == c) { memmove(&stack[i], &stack[i + 1], (size_t)(depth - i - 1) * sizeof(stack[0])); depth--; i--; }
    rgpu_rpc_lock();
    rgpu_rpc_call_locked(RGPU_OP_CTX_SYNC, 0, NULL, 0, NULL, 0, NULL, NULL, NULL, 0);
    rgpu_rpc_unlock();
    c->magic = 0;
    free(c);
    return CUDA_SUCCESS;
}

static CUresult ctx_device(CUdevice *device, CUcontext ctx)
{
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    CHECK_INIT();
    struct rgpu_ctx *c = ctx ? (struct rgpu_ctx *)ctx : rgpu_context_current();
    if (!c || c->magic != RGPU_MAGIC_CTX) return CUDA_ERROR_INVALID_CONTEXT;
    *device = c->device;
    return CUDA_SUCCESS;
}
RGPU_EXPORT CUresult CUDAAPI cuCtxGetDevice(CUdevice *device) { return ctx_device(device, NULL); }
RGPU_EXPORT CUresult CUDAAPI cuCtxGetDevice_v2(CUdevice *device, CUcontext ctx) { return ctx_device(device, ctx); }

RGPU_EXPORT CUresult CUDAAPI cuCtxSynchronize(void)
{
    CUresult rc = rgpu_context_check();
    if (rc) return rc;
    rgpu_rpc_lock();
    rc = rgpu_rpc_call_locked(RGPU_OP_CTX_SYNC, 0, NULL, 0, NULL, 0, NULL, NULL, NULL, 0);
    rgpu_rpc_unlock();
    return rc;
}
RGPU_EXPORT CUresult CUDAAPI cuCtxSynchronize_v2(CUcontext ctx)
{
    if (ctx && !valid(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    rgpu_rpc_lock();
    rc = rgpu_rpc_call_locked(RGPU_OP_CTX_SYNC, 0, NULL, 0, NULL, 0, NULL, NULL, NULL, 0);
    rgpu_rpc_unlock();
    return rc;
}

RGPU_EXPORT CUresult CUDAAPI cuCtxGetFlags(unsigned int *flags)
{
    if (!flags) return CUDA_ERROR_INVALID_VALUE;
    struct rgpu_ctx *c = rgpu_context_current();
    if (!c) return CUDA_ERROR_INVALID_CONTEXT;
    *flags = c->flags;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuCtxSetFlags(unsigned int flags)
{
    struct rgpu_ctx *c = rgpu_context_current();
    if (!c) return CUDA_ERROR_INVALID_CONTEXT;
    c->flags = flags;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuCtxGetApiVersion(CUcontext ctx, unsigned int *version)
{
    if (!version) return CUDA_ERROR_INVALID_VALUE;
    struct rgpu_ctx *c = ctx ? (struct rgpu_ctx *)ctx : rgpu_context_current();
    if (!c || c->magic != RGPU_MAGIC_CTX) return CUDA_ERROR_INVALID_CONTEXT;
    *version = 3020;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuCtxGetId(CUcontext ctx, unsigned long long *id)
{
    if (!id) return CUDA_ERROR_INVALID_VALUE;
    struct rgpu_ctx *c = ctx ? (struct rgpu_ctx *)ctx : rgpu_context_current();
    if (!c || c->magic != RGPU_MAGIC_CTX) return CUDA_ERROR_INVALID_CONTEXT;
    *id = (unsigned long long)(uintptr_t)c;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuCtxGetLimit(size_t *value, CUlimit limit)
{
    if (!value) return CUDA_ERROR_INVALID_VALUE;
    struct rgpu_ctx *c = rgpu_context_current();
    if (!c) return CUDA_ERROR_INVALID_CONTEXT;
    if ((unsigned)limit >= 8) return CUDA_ERROR_UNSUPPORTED_LIMIT;
    if (!c->limits[CU_LIMIT_STACK_SIZE]) limits_default(c);
    *value = c->limits[limit];
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuCtxSetLimit(CUlimit limit, size_t value)
{
    struct rgpu_ctx *c = rgpu_context_current();
    if (!c) return CUDA_ERROR_INVALID_CONTEXT;
    if ((unsigned)limit >= 8) return CUDA_ERROR_UNSUPPORTED_LIMIT;
    if (!c->limits[CU_LIMIT_STACK_SIZE]) limits_default(c);
    c->limits[limit] = value;
    /* The device malloc heap is the server's to size (the emulator makes it at the first launch that uses
     * device malloc); the other limits are answered here. No reply: errors come back at the next sync. */
    if (limit != CU_LIMIT_MALLOC_HEAP_SIZE) return CUDA_SUCCESS;
    rgpu_rpc_lock();
    rgpu_ctx_set_limit_args a = { (uint64_t)value, (uint32_t)limit };
    CUresult rc = rgpu_rpc_post_locked(RGPU_OP_CTX_SET_LIMIT, 0, &a, sizeof(a), NULL, 0);
    rgpu_rpc_unlock();
    return rc;
}

RGPU_EXPORT CUresult CUDAAPI cuCtxGetCacheConfig(CUfunc_cache *pconfig)
{
    if (!pconfig) return CUDA_ERROR_INVALID_VALUE;
    *pconfig = CU_FUNC_CACHE_PREFER_NONE;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuCtxSetCacheConfig(CUfunc_cache config) { (void)config; return CUDA_SUCCESS; }

RGPU_EXPORT CUresult CUDAAPI cuCtxGetSharedMemConfig(CUsharedconfig *pConfig)
{
    if (!pConfig) return CUDA_ERROR_INVALID_VALUE;
    *pConfig = CU_SHARED_MEM_CONFIG_FOUR_BYTE_BANK_SIZE;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuCtxSetSharedMemConfig(CUsharedconfig config) { (void)config; return CUDA_SUCCESS; }

RGPU_EXPORT CUresult CUDAAPI cuCtxGetStreamPriorityRange(int *leastPriority, int *greatestPriority)
{
    if (leastPriority) *leastPriority = 0;
    if (greatestPriority) *greatestPriority = -5;
    return CUDA_SUCCESS;
}
