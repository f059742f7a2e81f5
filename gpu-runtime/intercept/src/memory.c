/* cuMem*: device memory is allocated by the client inside the session's va window (first fit, 256-byte
 * aligned) and the quota is checked here, so out-of-memory and bad frees are exact and synchronous.
 * Copies to the device and memsets are fire-and-forget; copies to the host wait for their reply, which
 * is read straight into the caller's buffer. Transfers larger than a frame are split. */
#include "rgpu.h"

#include <stdlib.h>
#include <string.h>

#define ALIGN 256u
#define CHUNK ((uint64_t)RGPU_MAX_BULK & ~(uint64_t)(ALIGN - 1))

#define CHECK_CTX() do { CUresult rc_ = rgpu_context_check(); if (rc_) return rc_; } while (0)

/* ---- allocation table (caller holds rgpu_g.lock) ---- */

static size_t find_index(uint64_t addr) /* first allocation with base > addr */
{
    size_t lo = 0, hi = rgpu_g.nallocs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (rgpu_g.allocs[mid].addr <= addr) lo = mid + 1; else hi = mid;
    }
    return lo;
}

struct rgpu_alloc *rgpu_memory_find_locked(uint64_t addr)
{
    size_t i = find_index(addr);
    if (i == 0) return NULL;
    struct rgpu_alloc *a = &rgpu_g.allocs[i - 1];
    return addr < a->addr + a->size ? a : NULL;
}

/* An unmapped handle's memory is still there but not addressable, as on a GPU. */
static struct rgpu_alloc *find_alloc(uint64_t addr)
{
    struct rgpu_alloc *a = rgpu_memory_find_locked(addr);
    return a && a->kind != RGPU_ALLOC_PARKED ? a : NULL;
}

/* Mappings side by side in a reservation are one buffer to CUDA (PyTorch's expandable segments place
 * tensors across them), so a range may run on through adjacent mappings. */
int rgpu_memory_is_device(uint64_t addr, uint64_t len)
{
    struct rgpu_alloc *a = find_alloc(addr);
    uint64_t end = addr + len;
    if (!a || end < addr) return 0;
    while (end > a->addr + a->size) {
        struct rgpu_alloc *b = a + 1;
        if (a->kind != RGPU_ALLOC_MAPPED || b >= rgpu_g.allocs + rgpu_g.nallocs || b->kind != RGPU_ALLOC_MAPPED ||
            b->addr != a->addr + a->size) return 0;
        a = b;
    }
    return 1;
}

CUresult rgpu_memory_check_range_locked(uint64_t addr, uint64_t len)
{
    return rgpu_memory_is_device(addr, len) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

void rgpu_memory_reset(void)
{
    rgpu_g.nallocs = 0;
    rgpu_g.mem_used = 0;
    rgpu_vmm_reset_locked();
}

static CUresult insert_locked(size_t i, uint64_t addr, uint64_t size, int kind, void *owner)
{
    if (rgpu_g.nallocs == rgpu_g.cap_allocs) {
        size_t cap = rgpu_g.cap_allocs ? rgpu_g.cap_allocs * 2 : 64;
        void *n = realloc(rgpu_g.allocs, cap * sizeof(*rgpu_g.allocs));
        if (!n) return CUDA_ERROR_OUT_OF_MEMORY;
        rgpu_g.allocs = n;
        rgpu_g.cap_allocs = cap;
    }
    memmove(&rgpu_g.allocs[i + 1], &rgpu_g.allocs[i], (rgpu_g.nallocs - i) * sizeof(*rgpu_g.allocs));
    rgpu_g.allocs[i] = (struct rgpu_alloc){ addr, size, kind, owner };
    rgpu_g.nallocs++;
    return CUDA_SUCCESS;
}

CUresult rgpu_memory_insert_locked(uint64_t addr, uint64_t size, int kind, void *owner)
{
    return insert_locked(find_index(addr), addr, size, kind, owner);
}

void rgpu_memory_remove_locked(uint64_t addr)
{
    size_t i = find_index(addr);
    if (i == 0 || rgpu_g.allocs[i - 1].addr != addr) return;
    memmove(&rgpu_g.allocs[i - 1], &rgpu_g.allocs[i], (rgpu_g.nallocs - i) * sizeof(*rgpu_g.allocs));
    rgpu_g.nallocs--;
}

/* Module variables live wherever the server put them; entering them in the table lets copies to and
 * from symbols pass the same range checks as allocations. */
CUresult rgpu_memory_add_global_locked(uint64_t addr, uint64_t size)
{
    if (!size || find_alloc(addr)) return CUDA_SUCCESS;
    return insert_locked(find_index(addr), addr, size, RGPU_ALLOC_GLOBAL, NULL);
}

void rgpu_memory_remove_global_locked(uint64_t addr)
{
    size_t i = find_index(addr);
    if (i == 0 || rgpu_g.allocs[i - 1].addr != addr || rgpu_g.allocs[i - 1].kind != RGPU_ALLOC_GLOBAL) return;
    rgpu_memory_remove_locked(addr);
}

void rgpu_memory_free_all_locked(void)
{
    size_t keep = 0;
    for (size_t i = 0; i < rgpu_g.nallocs; i++) {
        struct rgpu_alloc *a = &rgpu_g.allocs[i];
        if (a->kind == RGPU_ALLOC_GLOBAL) { rgpu_g.allocs[keep++] = *a; continue; }
        rgpu_mem_free_args f = { a->addr };
        rgpu_rpc_post_locked(RGPU_OP_MEM_FREE, 0, &f, sizeof(f), NULL, 0);
    }
    rgpu_g.nallocs = keep;
    rgpu_g.mem_used = 0;
    rgpu_vmm_reset_locked();
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

/* Index of the first range in a sorted table that ends after addr. */
static size_t first_ending_after(const void *base, size_t n, size_t stride, uint64_t addr)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uint64_t *r = (const uint64_t *)((const uint8_t *)base + mid * stride); /* addr, size first */
        if (r[0] + r[1] <= addr) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* End of the first thing overlapping [addr, addr+size), or 0 when the range is free. Allocations of
 * either table never overlap within it, so the first range ending after addr is the only candidate. */
static uint64_t blocker(uint64_t addr, uint64_t size, int avoid_reserves)
{
    uint64_t end = 0;
    size_t i = first_ending_after(rgpu_g.allocs, rgpu_g.nallocs, sizeof(*rgpu_g.allocs), addr);
    if (i < rgpu_g.nallocs && rgpu_g.allocs[i].addr < addr + size) end = rgpu_g.allocs[i].addr + rgpu_g.allocs[i].size;
    if (avoid_reserves) {
        size_t j = first_ending_after(rgpu_g.reserves, rgpu_g.nreserves, sizeof(*rgpu_g.reserves), addr);
        if (j < rgpu_g.nreserves && rgpu_g.reserves[j].addr < addr + size) {
            uint64_t e = rgpu_g.reserves[j].addr + rgpu_g.reserves[j].size;
            if (e > end) end = e;
        }
    }
    return end;
}

int rgpu_memory_range_free_locked(uint64_t addr, uint64_t size, int avoid_reserves)
{
    if (addr < rgpu_g.va_base || addr + size > rgpu_g.va_base + rgpu_g.va_size || addr + size < addr) return 0;
    return blocker(addr, size, avoid_reserves) == 0;
}

CUresult rgpu_memory_gap_locked(uint64_t size, uint64_t align, int avoid_reserves, uint64_t *out)
{
    uint64_t end = rgpu_g.va_base + rgpu_g.va_size;
    uint64_t c = align_up(rgpu_g.va_base, align);
    for (;;) {
        if (c + size > end || c + size < c) return CUDA_ERROR_OUT_OF_MEMORY;
        uint64_t b = blocker(c, size, avoid_reserves);
        if (!b) { *out = c; return CUDA_SUCCESS; }
        c = align_up(b, align);
    }
}

static CUresult alloc_locked(uint64_t size, uint64_t *out)
{
    if (!size) return CUDA_ERROR_INVALID_VALUE;
    uint64_t sz = (size + ALIGN - 1) & ~(uint64_t)(ALIGN - 1);
    if (sz < size || rgpu_g.mem_used + sz > rgpu_g.quota_mem) return CUDA_ERROR_OUT_OF_MEMORY;
    uint64_t addr;
    CUresult rc = rgpu_memory_gap_locked(sz, ALIGN, 1, &addr);
    if (!rc) rc = rgpu_memory_insert_locked(addr, sz, RGPU_ALLOC_PLAIN, NULL);
    if (rc) return rc;
    rgpu_g.mem_used += sz;
    *out = addr;
    return CUDA_SUCCESS;
}

/* Stream-ordered allocation inside a capture would be a memory node of the graph: not recorded. */
static CUresult refuse_capture_locked(uint32_t stream, const char *what)
{
    struct rgpu_capture *c = rgpu_g.ncaptures ? rgpu_graph_capture_of_locked(stream) : NULL;
    return c ? rgpu_graph_invalidate_locked(c, what) : CUDA_SUCCESS;
}

static CUresult device_alloc(CUdeviceptr *dptr, size_t size, uint32_t stream)
{
    if (!dptr) return CUDA_ERROR_INVALID_VALUE;
    CHECK_CTX();
    rgpu_rpc_lock();
    uint64_t addr = 0;
    CUresult rc = refuse_capture_locked(stream, "cuMemAllocAsync (memory nodes)");
    if (!rc) rc = alloc_locked(size, &addr);
    if (!rc) {
        rgpu_mem_alloc_args a = { addr, (size + ALIGN - 1) & ~(uint64_t)(ALIGN - 1) };
        rc = rgpu_rpc_post_locked(RGPU_OP_MEM_ALLOC, stream, &a, sizeof(a), NULL, 0);
        if (!rc) *dptr = (CUdeviceptr)addr;
    }
    rgpu_rpc_unlock();
    if (rc == CUDA_ERROR_OUT_OF_MEMORY) rgpu_trace("cuMemAlloc(%zu): out of memory (%llu of %llu bytes used)", size,
                                                   (unsigned long long)rgpu_g.mem_used, (unsigned long long)rgpu_g.quota_mem);
    return rc;
}

static CUresult device_free(CUdeviceptr dptr, uint32_t stream)
{
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    if (!dptr) return CUDA_SUCCESS; /* cudaFree(0) */
    rgpu_rpc_lock();
    if ((rc = refuse_capture_locked(stream, "cuMemFreeAsync (memory nodes)"))) { rgpu_rpc_unlock(); return rc; }
    size_t i = find_index(dptr);
    if (i == 0 || rgpu_g.allocs[i - 1].addr != dptr || rgpu_g.allocs[i - 1].kind != RGPU_ALLOC_PLAIN) {
        rgpu_rpc_unlock();
        rgpu_trace("cuMemFree(0x%llx): not an allocation -> CUDA_ERROR_INVALID_VALUE", (unsigned long long)dptr);
        return CUDA_ERROR_INVALID_VALUE;
    }
    rgpu_g.mem_used -= rgpu_g.allocs[i - 1].size;
    memmove(&rgpu_g.allocs[i - 1], &rgpu_g.allocs[i], (rgpu_g.nallocs - i) * sizeof(*rgpu_g.allocs));
    rgpu_g.nallocs--;
    rgpu_mem_free_args a = { dptr };
    rc = rgpu_rpc_post_locked(RGPU_OP_MEM_FREE, stream, &a, sizeof(a), NULL, 0);
    rgpu_rpc_unlock();
    return rc;
}

RGPU_EXPORT CUresult CUDAAPI cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize) { return device_alloc(dptr, bytesize, 0); }
RGPU_EXPORT CUresult CUDAAPI cuMemFree_v2(CUdeviceptr dptr) { return device_free(dptr, 0); }
RGPU_EXPORT CUresult CUDAAPI cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream s) { return device_alloc(dptr, bytesize, rgpu_stream_id(s, 0)); }
RGPU_EXPORT CUresult CUDAAPI cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream s) { return device_alloc(dptr, bytesize, rgpu_stream_id(s, 1)); }
RGPU_EXPORT CUresult CUDAAPI cuMemFreeAsync(CUdeviceptr dptr, CUstream s) { return device_free(dptr, rgpu_stream_id(s, 0)); }
RGPU_EXPORT CUresult CUDAAPI cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream s) { return device_free(dptr, rgpu_stream_id(s, 1)); }

RGPU_EXPORT CUresult CUDAAPI cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t width, size_t height, unsigned int elem)
{
    if (!pPitch || !width || !height || (elem != 4 && elem != 8 && elem != 16)) return CUDA_ERROR_INVALID_VALUE;
    size_t align = rgpu_g.attrs[CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT] > 0 ? (size_t)rgpu_g.attrs[CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT] : 512;
    size_t pitch = (width + align - 1) / align * align;
    CUresult rc = device_alloc(dptr, pitch * height, 0);
    if (!rc) *pPitch = pitch;
    return rc;
}

RGPU_EXPORT CUresult CUDAAPI cuMemGetInfo_v2(size_t *freeb, size_t *total)
{
    CHECK_CTX();
    rgpu_rpc_lock();
    uint64_t cap = rgpu_g.quota_mem < rgpu_g.total_mem || !rgpu_g.total_mem ? rgpu_g.quota_mem : rgpu_g.total_mem;
    if (total) *total = (size_t)cap;
    if (freeb) *freeb = (size_t)(cap > rgpu_g.mem_used ? cap - rgpu_g.mem_used : 0);
    rgpu_rpc_unlock();
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    rgpu_rpc_lock();
    struct rgpu_alloc *a = find_alloc(dptr);
    if (a) { if (pbase) *pbase = a->addr; if (psize) *psize = a->size; }
    rgpu_rpc_unlock();
    return a ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

/* ---- host memory: ordinary memory here ("pinned" has no meaning on this side of the wire) ---- */

static CUresult host_alloc(void **pp, size_t size, unsigned flags)
{
    if (!pp) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    if (flags & CU_MEMHOSTALLOC_DEVICEMAP) {
        rgpu_trace("cuMemHostAlloc: mapped host memory cannot be reached by a remote GPU -> CUDA_ERROR_NOT_SUPPORTED");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    void *p = NULL;
    if (posix_memalign(&p, 4096, size ? size : 1)) return CUDA_ERROR_OUT_OF_MEMORY;
    rgpu_rpc_lock();
    if (rgpu_g.nhallocs == rgpu_g.cap_hallocs) {
        size_t cap = rgpu_g.cap_hallocs ? rgpu_g.cap_hallocs * 2 : 16;
        void *n = realloc(rgpu_g.hallocs, cap * sizeof(*rgpu_g.hallocs));
        if (!n) { rgpu_rpc_unlock(); free(p); return CUDA_ERROR_OUT_OF_MEMORY; }
        rgpu_g.hallocs = n;
        rgpu_g.cap_hallocs = cap;
    }
    rgpu_g.hallocs[rgpu_g.nhallocs++] = (struct rgpu_host_alloc){ p, size, flags };
    rgpu_rpc_unlock();
    *pp = p;
    return CUDA_SUCCESS;
}

static struct rgpu_host_alloc *find_host(const void *p)
{
    for (size_t i = 0; i < rgpu_g.nhallocs; i++) {
        struct rgpu_host_alloc *h = &rgpu_g.hallocs[i];
        if ((const uint8_t *)p >= (uint8_t *)h->ptr && (const uint8_t *)p < (uint8_t *)h->ptr + (h->size ? h->size : 1)) return h;
    }
    return NULL;
}

RGPU_EXPORT CUresult CUDAAPI cuMemHostAlloc(void **pp, size_t bytesize, unsigned int flags) { return host_alloc(pp, bytesize, flags); }
RGPU_EXPORT CUresult CUDAAPI cuMemAllocHost_v2(void **pp, size_t bytesize) { return host_alloc(pp, bytesize, 0); }

RGPU_EXPORT CUresult CUDAAPI cuMemFreeHost(void *p)
{
    rgpu_rpc_lock();
    struct rgpu_host_alloc *h = find_host(p);
    if (!h || h->ptr != p) { rgpu_rpc_unlock(); return CUDA_ERROR_INVALID_VALUE; }
    *h = rgpu_g.hallocs[--rgpu_g.nhallocs];
    rgpu_rpc_unlock();
    free(p);
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuMemHostGetFlags(unsigned int *pFlags, void *p)
{
    if (!pFlags) return CUDA_ERROR_INVALID_VALUE;
    rgpu_rpc_lock();
    struct rgpu_host_alloc *h = find_host(p);
    if (h) *pFlags = h->flags;
    rgpu_rpc_unlock();
    return h ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

RGPU_EXPORT CUresult CUDAAPI cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int flags)
{
    if (!p || !bytesize) return CUDA_ERROR_INVALID_VALUE;
    if (flags & CU_MEMHOSTREGISTER_DEVICEMAP) return CUDA_ERROR_NOT_SUPPORTED;
    return CUDA_SUCCESS; /* pinning is meaningless for a remote device; copies work from any memory */
}

RGPU_EXPORT CUresult CUDAAPI cuMemHostUnregister(void *p) { return p ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE; }

RGPU_EXPORT CUresult CUDAAPI cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    rgpu_trace("cuMemAllocManaged: managed memory cannot be shared with a remote GPU -> CUDA_ERROR_NOT_SUPPORTED");
    return CUDA_ERROR_NOT_SUPPORTED;
}

/* ---- copies ---- */

static CUresult htod(uint64_t dst, const void *src, uint64_t n, uint32_t stream)
{
    if (!n) return rgpu_rpc_ready();
    if (!src) return CUDA_ERROR_INVALID_VALUE;
    CHECK_CTX();
    rgpu_rpc_lock();
    CUresult rc = rgpu_memory_check_range_locked(dst, n);
    struct rgpu_capture *cap = !rc && rgpu_g.ncaptures ? rgpu_graph_capture_of_locked(stream) : NULL;
    if (cap) { rc = rgpu_graph_record_htod_locked(cap, dst, src, n); n = 0; }
    for (uint64_t off = 0; !rc && off < n; off += CHUNK) {
        uint64_t len = n - off < CHUNK ? n - off : CHUNK;
        if (rgpu_rpc_use_lane_locked(len, 1)) {
            rgpu_memcpy_htod_lane_args l = { dst + off, len };
            rc = rgpu_rpc_post_lane_locked(RGPU_OP_MEMCPY_HTOD_LANE, stream, &l, sizeof(l), (const uint8_t *)src + off, len);
            continue;
        }
        rgpu_memcpy_htod_args a = { dst + off };
        rc = rgpu_rpc_post_locked(RGPU_OP_MEMCPY_HTOD, stream, &a, sizeof(a), (const uint8_t *)src + off, len);
    }
    rgpu_rpc_unlock();
    return rc;
}

static CUresult dtoh(void *dst, uint64_t src, uint64_t n, uint32_t stream, int async)
{
    if (!n) return rgpu_rpc_ready();
    if (!dst) return CUDA_ERROR_INVALID_VALUE;
    CHECK_CTX();
    rgpu_rpc_lock();
    CUresult rc = rgpu_memory_check_range_locked(src, n);
    struct rgpu_capture *cap = !rc && rgpu_g.ncaptures ? rgpu_graph_capture_of_locked(stream) : NULL;
    if (cap) {
        rc = async ? rgpu_graph_record_dtoh_locked(cap, dst, src, n)
                   : rgpu_graph_invalidate_locked(cap, "a synchronous copy to the host");
        rgpu_rpc_unlock();
        return rc;
    }
    /* Every chunk but the last is posted without waiting; replies come back in order, so waiting for
     * the last one completes them all and the transfer stays pipelined. */
    for (uint64_t off = 0; !rc && off < n; off += CHUNK) {
        uint64_t len = n - off < CHUNK ? n - off : CHUNK;
        rgpu_memcpy_dtoh_args a = { src + off, len }; /* MEMCPY_DTOH_LANE's arguments are the same */
        uint16_t op = rgpu_rpc_use_lane_locked(len, 0) ? RGPU_OP_MEMCPY_DTOH_LANE : RGPU_OP_MEMCPY_DTOH;
        if (async || off + len < n)
            rc = rgpu_rpc_post_dtoh_locked(op, stream, &a, sizeof(a), (uint8_t *)dst + off, len, 0, 0, 0);
        else
            rc = rgpu_rpc_call_locked(op, stream, &a, sizeof(a), NULL, 0, NULL, NULL, (uint8_t *)dst + off, len);
    }
    if (!rc && async) rc = rgpu_rpc_flush_locked();
    rgpu_rpc_unlock();
    return rc;
}

CUresult rgpu_memory_htod(uint64_t dst, const void *src, uint64_t n, uint32_t stream) { return htod(dst, src, n, stream); }
CUresult rgpu_memory_dtoh_async(void *dst, uint64_t src, uint64_t n, uint32_t stream) { return dtoh(dst, src, n, stream, 1); }

static CUresult dtod(uint64_t dst, uint64_t src, uint64_t n, uint32_t stream)
{
    if (!n) return rgpu_rpc_ready();
    CHECK_CTX();
    rgpu_rpc_lock();
    CUresult rc = rgpu_memory_check_range_locked(dst, n);
    if (!rc) rc = rgpu_memory_check_range_locked(src, n);
    if (!rc) {
        rgpu_memcpy_dtod_args a = { dst, src, n };
        rc = rgpu_rpc_post_locked(RGPU_OP_MEMCPY_DTOD, stream, &a, sizeof(a), NULL, 0);
    }
    rgpu_rpc_unlock();
    return rc;
}

static int is_dev(uint64_t p)
{
    rgpu_rpc_lock();
    int d = find_alloc(p) != NULL;
    rgpu_rpc_unlock();
    return d;
}

/* cudaMemcpyDefault arrives here: the allocation table tells device pointers from host ones. */
static CUresult copy_any(uint64_t dst, uint64_t src, uint64_t n, uint32_t stream, int async)
{
    int dd = is_dev(dst), sd = is_dev(src);
    if (dd && sd) return dtod(dst, src, n, stream);
    if (dd) return htod(dst, (const void *)(uintptr_t)src, n, stream);
    if (sd) return dtoh((void *)(uintptr_t)dst, src, n, stream, async);
    if (n) memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, (size_t)n);
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n) { return htod(dst, src, n, 0); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyHtoD_v2_ptds(CUdeviceptr dst, const void *src, size_t n) { return htod(dst, src, n, 1); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, CUstream s) { return htod(dst, src, n, rgpu_stream_id(s, 0)); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyHtoDAsync_v2_ptsz(CUdeviceptr dst, const void *src, size_t n, CUstream s) { return htod(dst, src, n, rgpu_stream_id(s, 1)); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) { return dtoh(dst, src, n, 0, 0); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyDtoH_v2_ptds(void *dst, CUdeviceptr src, size_t n) { return dtoh(dst, src, n, 1, 0); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, CUstream s) { return dtoh(dst, src, n, rgpu_stream_id(s, 0), 1); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyDtoHAsync_v2_ptsz(void *dst, CUdeviceptr src, size_t n, CUstream s) { return dtoh(dst, src, n, rgpu_stream_id(s, 1), 1); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) { return dtod(dst, src, n, 0); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyDtoD_v2_ptds(CUdeviceptr dst, CUdeviceptr src, size_t n) { return dtod(dst, src, n, 1); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) { return dtod(dst, src, n, rgpu_stream_id(s, 0)); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyDtoDAsync_v2_ptsz(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) { return dtod(dst, src, n, rgpu_stream_id(s, 1)); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t n) { return copy_any(dst, src, n, 0, 0); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpy_ptds(CUdeviceptr dst, CUdeviceptr src, size_t n) { return copy_any(dst, src, n, 1, 0); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) { return copy_any(dst, src, n, rgpu_stream_id(s, 0), 1); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyAsync_ptsz(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) { return copy_any(dst, src, n, rgpu_stream_id(s, 1), 1); }

/* ---- 2D copies ---- */

static CUmemorytype kind_of(CUmemorytype t, uint64_t p)
{
    if (t == CU_MEMORYTYPE_UNIFIED) return is_dev(p) ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
    return t;
}

static CUresult copy2d(const CUDA_MEMCPY2D *c, uint32_t stream, int async)
{
    if (!c) return CUDA_ERROR_INVALID_VALUE;
    CHECK_CTX();
    uint64_t w = c->WidthInBytes, h = c->Height;
    if (!w || !h) return CUDA_SUCCESS;
    CUmemorytype st = kind_of(c->srcMemoryType, c->srcMemoryType == CU_MEMORYTYPE_UNIFIED ? c->srcDevice : 0);
    CUmemorytype dt = kind_of(c->dstMemoryType, c->dstMemoryType == CU_MEMORYTYPE_UNIFIED ? c->dstDevice : 0);
    CUDA_MEMCPY2D flat; /* an array end becomes device memory in the array's packed layout (array.c) */
    if (st == CU_MEMORYTYPE_ARRAY || dt == CU_MEMORYTYPE_ARRAY) {
        CUresult arc = rgpu_array_flatten2d(c, &flat);
        if (arc) return arc;
        if (st == CU_MEMORYTYPE_ARRAY) st = CU_MEMORYTYPE_DEVICE;
        if (dt == CU_MEMORYTYPE_ARRAY) dt = CU_MEMORYTYPE_DEVICE;
        c = &flat;
    }
    uint64_t sp = c->srcPitch ? c->srcPitch : w, dp = c->dstPitch ? c->dstPitch : w;
    if (sp < w || dp < w) return CUDA_ERROR_INVALID_VALUE;
    uint64_t sdev = c->srcDevice + c->srcY * sp + c->srcXInBytes;
    uint64_t ddev = c->dstDevice + c->dstY * dp + c->dstXInBytes;
    const uint8_t *shost = (const uint8_t *)c->srcHost + c->srcY * sp + c->srcXInBytes;
    uint8_t *dhost = (uint8_t *)c->dstHost + c->dstY * dp + c->dstXInBytes;
    if (st == CU_MEMORYTYPE_HOST && dt == CU_MEMORYTYPE_HOST) {
        for (uint64_t r = 0; r < h; r++) memmove(dhost + r * dp, shost + r * sp, (size_t)w);
        return CUDA_SUCCESS;
    }
    uint64_t rows_per = CHUNK / w ? CHUNK / w : 1;
    if (w > CHUNK) return CUDA_ERROR_INVALID_VALUE;
    rgpu_rpc_lock();
    CUresult rc = CUDA_SUCCESS;
    if (rgpu_g.ncaptures && (st == CU_MEMORYTYPE_HOST || dt == CU_MEMORYTYPE_HOST) && (rc = refuse_capture_locked(stream, "a 2D copy with host memory")))
        goto out;
    if (dt == CU_MEMORYTYPE_DEVICE && (rc = rgpu_memory_check_range_locked(ddev, dp * (h - 1) + w))) goto out;
    if (st == CU_MEMORYTYPE_DEVICE && (rc = rgpu_memory_check_range_locked(sdev, sp * (h - 1) + w))) goto out;
    if (st == CU_MEMORYTYPE_DEVICE && dt == CU_MEMORYTYPE_DEVICE) {
        rgpu_memcpy_dtod_2d_args a = { ddev, dp, sdev, sp, w, h };
        rc = rgpu_rpc_post_locked(RGPU_OP_MEMCPY_DTOD_2D, stream, &a, sizeof(a), NULL, 0);
    } else if (dt == CU_MEMORYTYPE_DEVICE) {
        /* The frame carries packed rows: pack a strided source in a scratch buffer, one chunk at a time. */
        uint8_t *tmp = sp == w ? NULL : malloc((size_t)(rows_per * w < h * w ? rows_per * w : h * w));
        if (sp != w && !tmp) { rc = CUDA_ERROR_OUT_OF_MEMORY; goto out; }
        for (uint64_t r = 0; !rc && r < h; r += rows_per) {
            uint64_t n = h - r < rows_per ? h - r : rows_per;
            const uint8_t *src = shost + r * sp;
            if (tmp) { for (uint64_t k = 0; k < n; k++) memcpy(tmp + k * w, shost + (r + k) * sp, (size_t)w); src = tmp; }
            rgpu_memcpy_htod_2d_args a = { ddev + r * dp, dp, w, n }; /* MEMCPY_HTOD_2D_LANE's arguments are the same */
            if (rgpu_rpc_use_lane_locked(n * w, 1)) rc = rgpu_rpc_post_lane_locked(RGPU_OP_MEMCPY_HTOD_2D_LANE, stream, &a, sizeof(a), src, n * w);
            else {
                rc = rgpu_rpc_post_locked(RGPU_OP_MEMCPY_HTOD_2D, stream, &a, sizeof(a), src, n * w);
                if (!rc && tmp) rc = rgpu_rpc_flush_locked(); /* tmp is reused: the bytes must have left */
            }
        }
        free(tmp);
    } else {
        for (uint64_t r = 0; !rc && r < h; r += rows_per) {
            uint64_t n = h - r < rows_per ? h - r : rows_per;
            rgpu_memcpy_dtoh_2d_args a = { sdev + r * sp, sp, w, n }; /* MEMCPY_DTOH_2D_LANE's arguments are the same */
            uint16_t op = rgpu_rpc_use_lane_locked(n * w, 0) ? RGPU_OP_MEMCPY_DTOH_2D_LANE : RGPU_OP_MEMCPY_DTOH_2D;
            if (async || r + n < h)
                rc = rgpu_rpc_post_dtoh_locked(op, stream, &a, sizeof(a), dhost + r * dp, n * w, w, n, dp);
            else if (dp == w)
                rc = rgpu_rpc_call_locked(op, stream, &a, sizeof(a), NULL, 0, NULL, NULL, dhost + r * dp, n * w);
            else {
                rc = rgpu_rpc_post_dtoh_locked(op, stream, &a, sizeof(a), dhost + r * dp, n * w, w, n, dp);
                if (!rc) rc = rgpu_rpc_call_locked(RGPU_OP_STREAM_SYNC, stream, NULL, 0, NULL, 0, NULL, NULL, NULL, 0);
            }
        }
        if (!rc && async) rc = rgpu_rpc_flush_locked();
    }
out:
    rgpu_rpc_unlock();
    return rc;
}

RGPU_EXPORT CUresult CUDAAPI cuMemcpy2D_v2(const CUDA_MEMCPY2D *c) { return copy2d(c, 0, 0); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpy2D_v2_ptds(const CUDA_MEMCPY2D *c) { return copy2d(c, 1, 0); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D *c) { return copy2d(c, 0, 0); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpy2DUnaligned_v2_ptds(const CUDA_MEMCPY2D *c) { return copy2d(c, 1, 0); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *c, CUstream s) { return copy2d(c, rgpu_stream_id(s, 0), 1); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpy2DAsync_v2_ptsz(const CUDA_MEMCPY2D *c, CUstream s) { return copy2d(c, rgpu_stream_id(s, 1), 1); }

/* ---- memset ---- */

static CUresult memset2d(uint64_t dst, uint64_t pitch, uint32_t value, uint32_t elem, uint64_t width, uint64_t height, uint32_t stream)
{
    if (!width || !height) return rgpu_rpc_ready();
    CHECK_CTX();
    if (dst % elem) return CUDA_ERROR_INVALID_VALUE;
    if (height > 1 && pitch < width * elem) return CUDA_ERROR_INVALID_VALUE;
    rgpu_rpc_lock();
    CUresult rc = rgpu_memory_check_range_locked(dst, pitch * (height - 1) + width * elem);
    if (!rc) {
        rgpu_memset_args a = { dst, value, elem, width, height, height > 1 ? pitch : width * elem };
        rc = rgpu_rpc_post_locked(RGPU_OP_MEMSET, stream, &a, sizeof(a), NULL, 0);
    }
    rgpu_rpc_unlock();
    return rc;
}

#define MEMSET_FAMILY(bits, type, elem)                                                                         \
    RGPU_EXPORT CUresult CUDAAPI cuMemsetD##bits##_v2(CUdeviceptr d, type v, size_t n)                          \
    { return memset2d(d, 0, v, elem, n, 1, 0); }                                                                \
    RGPU_EXPORT CUresult CUDAAPI cuMemsetD##bits##_v2_ptds(CUdeviceptr d, type v, size_t n)                     \
    { return memset2d(d, 0, v, elem, n, 1, 1); }                                                                \
    RGPU_EXPORT CUresult CUDAAPI cuMemsetD##bits##Async(CUdeviceptr d, type v, size_t n, CUstream s)            \
    { return memset2d(d, 0, v, elem, n, 1, rgpu_stream_id(s, 0)); }                                             \
    RGPU_EXPORT CUresult CUDAAPI cuMemsetD##bits##Async_ptsz(CUdeviceptr d, type v, size_t n, CUstream s)       \
    { return memset2d(d, 0, v, elem, n, 1, rgpu_stream_id(s, 1)); }                                             \
    RGPU_EXPORT CUresult CUDAAPI cuMemsetD2D##bits##_v2(CUdeviceptr d, size_t p, type v, size_t w, size_t h)    \
    { return memset2d(d, p, v, elem, w, h, 0); }                                                                \
    RGPU_EXPORT CUresult CUDAAPI cuMemsetD2D##bits##_v2_ptds(CUdeviceptr d, size_t p, type v, size_t w, size_t h) \
    { return memset2d(d, p, v, elem, w, h, 1); }                                                                \
    RGPU_EXPORT CUresult CUDAAPI cuMemsetD2D##bits##Async(CUdeviceptr d, size_t p, type v, size_t w, size_t h, CUstream s) \
    { return memset2d(d, p, v, elem, w, h, rgpu_stream_id(s, 0)); }                                             \
    RGPU_EXPORT CUresult CUDAAPI cuMemsetD2D##bits##Async_ptsz(CUdeviceptr d, size_t p, type v, size_t w, size_t h, CUstream s) \
    { return memset2d(d, p, v, elem, w, h, rgpu_stream_id(s, 1)); }

MEMSET_FAMILY(8, unsigned char, 1)
MEMSET_FAMILY(16, unsigned short, 2)
MEMSET_FAMILY(32, unsigned int, 4)

/* ---- pointer attributes ---- */

static CUresult pointer_attr(void *data, CUpointer_attribute attr, CUdeviceptr ptr)
{
    rgpu_rpc_lock();
    struct rgpu_alloc *a = find_alloc(ptr);
    struct rgpu_host_alloc *h = a ? NULL : find_host((const void *)(uintptr_t)ptr);
    struct rgpu_alloc da = a ? *a : (struct rgpu_alloc){ 0, 0, 0, NULL };
    struct rgpu_host_alloc ha = h ? *h : (struct rgpu_host_alloc){ 0 };
    rgpu_rpc_unlock();
    if (!a && !h) {
        if (attr == CU_POINTER_ATTRIBUTE_MEMORY_TYPE || attr == CU_POINTER_ATTRIBUTE_CONTEXT) return CUDA_ERROR_INVALID_VALUE;
        if (attr == CU_POINTER_ATTRIBUTE_IS_MANAGED || attr == CU_POINTER_ATTRIBUTE_MAPPED) { *(unsigned *)data = 0; return CUDA_SUCCESS; }
        return CUDA_ERROR_INVALID_VALUE;
    }
    switch (attr) {
    case CU_POINTER_ATTRIBUTE_CONTEXT: *(CUcontext *)data = (CUcontext)rgpu_context_primary(0); return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE: *(unsigned *)data = a ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
        if (!a) return CUDA_ERROR_INVALID_VALUE;
        *(CUdeviceptr *)data = ptr; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
        if (!h) return CUDA_ERROR_INVALID_VALUE;
        *(void **)data = (void *)(uintptr_t)ptr; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED: *(unsigned *)data = 0; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: *(int *)data = 0; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: *(CUdeviceptr *)data = a ? da.addr : (CUdeviceptr)(uintptr_t)ha.ptr; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE: *(size_t *)data = a ? (size_t)da.size : ha.size; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MAPPED: *(unsigned *)data = a != NULL; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID: *(unsigned long long *)data = a ? da.addr : (unsigned long long)(uintptr_t)ha.ptr; return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS: *(unsigned *)data = 1; return CUDA_SUCCESS;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
}

RGPU_EXPORT CUresult CUDAAPI cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr)
{
    if (!data) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    return pointer_attr(data, attribute, ptr);
}

RGPU_EXPORT CUresult CUDAAPI cuPointerGetAttributes(unsigned int n, CUpointer_attribute *attrs, void **data, CUdeviceptr ptr)
{
    if (!attrs || !data) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    /* Unlike cuPointerGetAttribute, an unknown (host) pointer is not an error here: the driver reports
     * memory type 0 and NULL values, which cudaPointerGetAttributes turns into cudaMemoryTypeUnregistered. */
    for (unsigned i = 0; i < n; i++) {
        if (!data[i]) continue;
        if (pointer_attr(data[i], attrs[i], ptr)) {
            switch (attrs[i]) {
            case CU_POINTER_ATTRIBUTE_CONTEXT: *(CUcontext *)data[i] = NULL; break;
            case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: *(CUdeviceptr *)data[i] = 0; break;
            case CU_POINTER_ATTRIBUTE_HOST_POINTER: *(void **)data[i] = NULL; break;
            case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: *(int *)data[i] = -2; break;
            case CU_POINTER_ATTRIBUTE_RANGE_SIZE: *(size_t *)data[i] = 0; break;
            default: *(unsigned *)data[i] = 0; break;
            }
        }
    }
    return CUDA_SUCCESS;
}
