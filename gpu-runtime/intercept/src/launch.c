/* Kernel launches and occupancy. A launch is one no-reply frame batched with its neighbours: the
 * configuration is validated here (as the driver would), the parameters are packed with the layout from
 * MODULE_LOAD, and faults surface at the next synchronising call. */
#include "rgpu.h"

#include <string.h>

#define PARAM_MAX 32768 /* CUDA 12.1+ allows 32764 bytes of kernel parameters */

static __thread uint8_t param_buf[sizeof(rgpu_launch_args) + PARAM_MAX];

static CUresult validate(const struct rgpu_func *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                         unsigned bz, unsigned smem)
{
    const int *a = rgpu_g.attrs;
    if (!gx || !gy || !gz || !bx || !by || !bz) return CUDA_ERROR_INVALID_VALUE;
    unsigned max_bx = a[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X] > 0 ? (unsigned)a[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X] : 1024;
    unsigned max_by = a[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y] > 0 ? (unsigned)a[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y] : 1024;
    unsigned max_bz = a[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z] > 0 ? (unsigned)a[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z] : 64;
    unsigned max_gy = a[CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y] > 0 ? (unsigned)a[CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y] : 65535;
    unsigned max_gz = a[CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z] > 0 ? (unsigned)a[CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z] : 65535;
    unsigned max_threads = f->attrs[CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK] > 0 ? (unsigned)f->attrs[CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK] : 1024;
    if (bx > max_bx || by > max_by || bz > max_bz) return CUDA_ERROR_INVALID_VALUE;
    if ((uint64_t)bx * by * bz > max_threads) return CUDA_ERROR_INVALID_VALUE;
    if (gx > 0x7fffffffu || gy > max_gy || gz > max_gz) return CUDA_ERROR_INVALID_VALUE;
    int max_dyn = f->attrs[CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES];
    if (max_dyn > 0 && smem > (unsigned)max_dyn) return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

static CUresult launch(CUfunction fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                       unsigned smem, CUstream s, void **params, void **extra, int ptds, uint32_t flags)
{
    CUresult rc = rgpu_context_check();
    if (rc) return rc;
    struct rgpu_func *f = rgpu_module_func_of(fn);
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    rc = validate(f, gx, gy, gz, bx, by, bz, smem);
    if (rc) {
        rgpu_trace("launch %s <<<(%u,%u,%u),(%u,%u,%u),%u>>> rejected: CUresult %d", f->name, gx, gy, gz, bx, by, bz, smem, (int)rc);
        return rc;
    }
    uint8_t *p = param_buf + sizeof(rgpu_launch_args);
    uint32_t plen = f->param_total;
    if (plen > PARAM_MAX) return CUDA_ERROR_INVALID_VALUE;
    if (extra) {
        const void *buf = NULL;
        size_t size = 0;
        for (size_t i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
            if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER) buf = extra[i + 1];
            else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE) size = *(size_t *)extra[i + 1];
            else return CUDA_ERROR_INVALID_VALUE;
        }
        if (!buf || size > PARAM_MAX) return CUDA_ERROR_INVALID_VALUE;
        memcpy(p, buf, size);
        if (size > plen) plen = (uint32_t)size;
        else memset(p + size, 0, plen - size);
    } else {
        if (f->nparams && !params) return CUDA_ERROR_INVALID_VALUE;
        memset(p, 0, plen);
        for (uint32_t i = 0; i < f->nparams; i++) memcpy(p + f->param_off[i], params[i], f->param_size[i]);
    }
    rgpu_launch_args a = { f->module->id, f->index, gx, gy, gz, bx, by, bz, smem, flags };
    rgpu_rpc_lock();
    rc = rgpu_rpc_post_locked(RGPU_OP_LAUNCH, rgpu_stream_id(s, ptds), &a, sizeof(a), p, plen);
    rgpu_rpc_unlock();
    return rc;
}

RGPU_EXPORT CUresult CUDAAPI cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                                            unsigned int by, unsigned int bz, unsigned int smem, CUstream s, void **params, void **extra)
{
    return launch(f, gx, gy, gz, bx, by, bz, smem, s, params, extra, 0, 0);
}

RGPU_EXPORT CUresult CUDAAPI cuLaunchKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                                                 unsigned int by, unsigned int bz, unsigned int smem, CUstream s, void **params, void **extra)
{
    return launch(f, gx, gy, gz, bx, by, bz, smem, s, params, extra, 1, 0);
}

RGPU_EXPORT CUresult CUDAAPI cuLaunchCooperativeKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                                                       unsigned int by, unsigned int bz, unsigned int smem, CUstream s, void **params)
{
    return launch(f, gx, gy, gz, bx, by, bz, smem, s, params, NULL, 0, 1);
}

RGPU_EXPORT CUresult CUDAAPI cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                                                            unsigned int by, unsigned int bz, unsigned int smem, CUstream s, void **params)
{
    return launch(f, gx, gy, gz, bx, by, bz, smem, s, params, NULL, 1, 1);
}

static CUresult launch_ex(const CUlaunchConfig *c, CUfunction f, void **params, void **extra, int ptds)
{
    if (!c) return CUDA_ERROR_INVALID_VALUE;
    uint32_t flags = 0;
    for (unsigned i = 0; i < c->numAttrs; i++) {
        const CUlaunchAttribute *at = &c->attrs[i];
        if (at->id == CU_LAUNCH_ATTRIBUTE_COOPERATIVE) { if (at->value.cooperative) flags |= 1; }
        else rgpu_trace("cuLaunchKernelEx: launch attribute %d ignored", (int)at->id);
    }
    return launch(f, c->gridDimX, c->gridDimY, c->gridDimZ, c->blockDimX, c->blockDimY, c->blockDimZ, c->sharedMemBytes,
                  c->hStream, params, extra, ptds, flags);
}

RGPU_EXPORT CUresult CUDAAPI cuLaunchKernelEx(const CUlaunchConfig *c, CUfunction f, void **params, void **extra)
{
    return launch_ex(c, f, params, extra, 0);
}

RGPU_EXPORT CUresult CUDAAPI cuLaunchKernelEx_ptsz(const CUlaunchConfig *c, CUfunction f, void **params, void **extra)
{
    return launch_ex(c, f, params, extra, 1);
}

/* ---- occupancy, computed from the device and kernel attributes like the CUDA occupancy calculator ---- */

static int active_blocks(const struct rgpu_func *f, int block, size_t dyn)
{
    const int *a = rgpu_g.attrs;
    int max_threads = f->attrs[CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK] > 0 ? f->attrs[CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK] : 1024;
    if (block <= 0 || block > max_threads) return 0;
    int warp = a[CU_DEVICE_ATTRIBUTE_WARP_SIZE] > 0 ? a[CU_DEVICE_ATTRIBUTE_WARP_SIZE] : 32;
    int warps = (block + warp - 1) / warp;
    int sm_threads = a[CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR] > 0 ? a[CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR] : 2048;
    int n = sm_threads / warp / warps;
    int sm_blocks = a[CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR] > 0 ? a[CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR] : 16;
    if (sm_blocks < n) n = sm_blocks;
    int regs = f->attrs[CU_FUNC_ATTRIBUTE_NUM_REGS];
    int sm_regs = a[CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR];
    if (regs > 0 && sm_regs > 0) {
        int per_warp = (regs * warp + 255) / 256 * 256; /* registers are allocated per warp in units of 256 */
        int by_regs = sm_regs / (per_warp * warps);
        if (by_regs < n) n = by_regs;
    }
    size_t smem = (size_t)f->attrs[CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES] + dyn;
    int sm_smem = a[CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR];
    if (smem > 0 && sm_smem > 0) {
        int by_smem = (int)((size_t)sm_smem / smem);
        if (by_smem < n) n = by_smem;
    }
    return n < 0 ? 0 : n;
}

RGPU_EXPORT CUresult CUDAAPI cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *numBlocks, CUfunction func, int blockSize,
                                                                                   size_t dyn, unsigned int flags)
{
    struct rgpu_func *f = rgpu_module_func_of(func);
    if (!numBlocks) return CUDA_ERROR_INVALID_VALUE;
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    *numBlocks = active_blocks(f, blockSize, dyn);
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction func, int blockSize, size_t dyn)
{
    return cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(numBlocks, func, blockSize, dyn, 0);
}

RGPU_EXPORT CUresult CUDAAPI cuOccupancyMaxPotentialBlockSizeWithFlags(int *minGridSize, int *blockSize, CUfunction func,
                                                                       CUoccupancyB2DSize b2d, size_t dyn, int limit, unsigned int flags)
{
    struct rgpu_func *f = rgpu_module_func_of(func);
    if (!minGridSize || !blockSize) return CUDA_ERROR_INVALID_VALUE;
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    int warp = rgpu_g.attrs[CU_DEVICE_ATTRIBUTE_WARP_SIZE] > 0 ? rgpu_g.attrs[CU_DEVICE_ATTRIBUTE_WARP_SIZE] : 32;
    int max = f->attrs[CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK] > 0 ? f->attrs[CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK] : 1024;
    if (limit > 0 && limit < max) max = limit;
    int best = 0, best_block = warp < max ? warp : max, best_n = 0;
    for (int b = max; b > 0; b -= (b % warp ? b % warp : warp)) {
        size_t d = b2d ? b2d(b) : dyn;
        int n = active_blocks(f, b, d);
        if (n * b > best) { best = n * b; best_block = b; best_n = n; }
    }
    int sms = rgpu_g.attrs[CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT] > 0 ? rgpu_g.attrs[CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT] : 1;
    *blockSize = best_block;
    *minGridSize = best_n * sms;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuOccupancyMaxPotentialBlockSize(int *minGridSize, int *blockSize, CUfunction func,
                                                              CUoccupancyB2DSize b2d, size_t dyn, int limit)
{
    return cuOccupancyMaxPotentialBlockSizeWithFlags(minGridSize, blockSize, func, b2d, dyn, limit, 0);
}

RGPU_EXPORT CUresult CUDAAPI cuOccupancyAvailableDynamicSMemPerBlock(size_t *dynamicSmemSize, CUfunction func, int numBlocks, int blockSize)
{
    struct rgpu_func *f = rgpu_module_func_of(func);
    if (!dynamicSmemSize || numBlocks <= 0) return CUDA_ERROR_INVALID_VALUE;
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    int sm = rgpu_g.attrs[CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR];
    int per = sm / numBlocks - f->attrs[CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES];
    int optin = rgpu_g.attrs[CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN];
    if (optin > 0 && per > optin) per = optin;
    *dynamicSmemSize = per > 0 ? (size_t)per : 0;
    return CUDA_SUCCESS;
}
