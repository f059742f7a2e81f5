/* Library lifetime (fork, exit), cuInit, versions and error strings. */
#include "rgpu.h"

#include <string.h>
#include <unistd.h>

static void atfork_prepare(void) { pthread_mutex_lock(&rgpu_g.lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&rgpu_g.lock); }
static void atfork_child(void)
{
    rgpu_rpc_after_fork_child();
    rgpu_memory_reset();
    rgpu_context_after_fork();
    rgpu_module_after_fork();
    rgpu_array_after_fork();
    rgpu_hostfn_after_fork();
    rgpu_graph_after_fork();
}

__attribute__((constructor)) static void rgpu_entry_load(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* Runs after cudart's atexit handlers (they unload libraries and release the primary context through
 * us first), so the session is still there for them. */
__attribute__((destructor)) static void rgpu_entry_unload(void)
{
    rgpu_hostfn_shutdown(); /* queued host functions still need the session */
    if (rgpu_g.init_state == 1) rgpu_rpc_goodbye();
}

RGPU_EXPORT CUresult CUDAAPI cuInit(unsigned int flags)
{
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    return rgpu_rpc_ensure();
}

RGPU_EXPORT CUresult CUDAAPI cuDriverGetVersion(int *version)
{
    if (!version) return CUDA_ERROR_INVALID_VALUE;
    /* cudart asks before cuInit; 13000 is the floor it accepts. After HELLO, the server's driver. */
    *version = rgpu_g.init_state == 1 && rgpu_g.driver_version ? rgpu_g.driver_version : 13000;
    return CUDA_SUCCESS;
}

static const struct rgpu_error_name *find_error(CUresult e)
{
    for (size_t i = 0; i < rgpu_error_names_count; i++)
        if (rgpu_error_names[i].code == (int)e) return &rgpu_error_names[i];
    return NULL;
}

RGPU_EXPORT CUresult CUDAAPI cuGetErrorName(CUresult error, const char **pStr)
{
    if (!pStr) return CUDA_ERROR_INVALID_VALUE;
    const struct rgpu_error_name *e = find_error(error);
    *pStr = e ? e->name : NULL;
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

RGPU_EXPORT CUresult CUDAAPI cuGetErrorString(CUresult error, const char **pStr)
{
    if (!pStr) return CUDA_ERROR_INVALID_VALUE;
    const struct rgpu_error_name *e = find_error(error);
    *pStr = e ? e->text : NULL;
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

RGPU_EXPORT CUresult CUDAAPI cuModuleGetLoadingMode(CUmoduleLoadingMode *mode)
{
    if (!mode) return CUDA_ERROR_INVALID_VALUE;
    *mode = CU_MODULE_LAZY_LOADING; /* cudart then loads each fatbin on first use, not all at init */
    return CUDA_SUCCESS;
}
