/* Virtual memory management (cuMemAddressReserve, cuMemCreate, cuMemMap, ...), as PyTorch's expandable
 * segments and growable buffers use it. The server's device memory is one flat window per session with no
 * page tables, so:
 *  - a reservation is a range of the session's va window that the allocator keeps out of (no server op);
 *  - a physical handle is bookkeeping plus quota: it gets device memory only when first mapped, as a
 *    server allocation at the mapped address (MEM_ALLOC);
 *  - unmapping keeps that allocation where it is ("parked": not addressable, still occupying va), so the
 *    contents survive; mapping the handle again elsewhere moves them (alloc, device copy, free), and a
 *    parked handle in the way of a new mapping is moved aside the same way;
 *  - one handle mapped at two addresses at once would be aliasing, which a flat window cannot express:
 *    refused with CUDA_ERROR_NOT_SUPPORTED, as is mapping part of a handle.
 * Access flags are recorded and reported, not enforced. Everything runs under rgpu_g.lock, no round trip. */
#include "rgpu.h"

#include <stdlib.h>
#include <string.h>

#define GRANULE (2ull << 20) /* what CUDA reports for device memory: minimum and recommended */
#define RGPU_MAGIC_VMM 0x564d4d31u

#define CHECK_CTX() do { CUresult rc_ = rgpu_context_check(); if (rc_) return rc_; } while (0)

struct vmm_handle {
    uint32_t magic;
    uint32_t gen;       /* rgpu_g.vmm_gen at creation: stale after a context reset or fork */
    uint64_t size;
    int refs;           /* cuMemCreate + cuMemRetainAllocationHandle - cuMemRelease */
    uint64_t addr;      /* its server allocation, 0 before the first mapping */
    int mapped;
    unsigned long long access;
    CUmemAllocationProp prop;
};

static struct vmm_handle *handle_of(CUmemGenericAllocationHandle h)
{
    struct vmm_handle *v = (struct vmm_handle *)(uintptr_t)h;
    return v && v->magic == RGPU_MAGIC_VMM ? v : NULL;
}

static int live(const struct vmm_handle *v) { return v->gen == rgpu_g.vmm_gen; }

void rgpu_vmm_reset_locked(void)
{
    rgpu_g.nreserves = 0;
    rgpu_g.vmm_gen++;
}

static CUresult check_location(const CUmemLocation *l)
{
    if (l->type != CU_MEM_LOCATION_TYPE_DEVICE) {
        rgpu_trace("VMM: location type %d (only device memory is remote) -> CUDA_ERROR_NOT_SUPPORTED", (int)l->type);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    return l->id == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

static CUresult check_prop(const CUmemAllocationProp *p)
{
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    if (p->type != CU_MEM_ALLOCATION_TYPE_PINNED) {
        rgpu_trace("VMM: allocation type %d -> CUDA_ERROR_NOT_SUPPORTED", (int)p->type);
        return p->type == CU_MEM_ALLOCATION_TYPE_INVALID ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_SUPPORTED;
    }
    return check_location(&p->location);
}

RGPU_EXPORT CUresult CUDAAPI cuMemGetAllocationGranularity(size_t *granularity, const CUmemAllocationProp *prop,
                                                           CUmemAllocationGranularity_flags option)
{
    if (!granularity) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    if (option != CU_MEM_ALLOC_GRANULARITY_MINIMUM && option != CU_MEM_ALLOC_GRANULARITY_RECOMMENDED) return CUDA_ERROR_INVALID_VALUE;
    if ((rc = check_prop(prop))) return rc;
    *granularity = GRANULE;
    return CUDA_SUCCESS;
}

/* ---- reservations ---- */

static size_t reserve_index(uint64_t addr) /* first reservation starting above addr */
{
    size_t lo = 0, hi = rgpu_g.nreserves;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (rgpu_g.reserves[mid].addr <= addr) lo = mid + 1; else hi = mid;
    }
    return lo;
}

RGPU_EXPORT CUresult CUDAAPI cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment, CUdeviceptr addr,
                                                 unsigned long long flags)
{
    if (!ptr) return CUDA_ERROR_INVALID_VALUE;
    CHECK_CTX();
    if (!size || size % GRANULE || flags) return CUDA_ERROR_INVALID_VALUE;
    if (alignment & (alignment - 1)) return CUDA_ERROR_INVALID_VALUE;
    uint64_t align = alignment > GRANULE ? alignment : GRANULE;
    rgpu_rpc_lock();
    CUresult rc = CUDA_SUCCESS;
    uint64_t at = 0;
    /* The address is a hint: taken when free, else first fit (as the driver does). */
    if (addr && addr % align == 0 && rgpu_memory_range_free_locked(addr, size, 1)) at = addr;
    else rc = rgpu_memory_gap_locked(size, align, 1, &at);
    if (!rc && rgpu_g.nreserves == rgpu_g.cap_reserves) {
        size_t cap = rgpu_g.cap_reserves ? rgpu_g.cap_reserves * 2 : 8;
        void *n = realloc(rgpu_g.reserves, cap * sizeof(*rgpu_g.reserves));
        if (!n) rc = CUDA_ERROR_OUT_OF_MEMORY;
        else { rgpu_g.reserves = n; rgpu_g.cap_reserves = cap; }
    }
    if (!rc) {
        size_t i = reserve_index(at);
        memmove(&rgpu_g.reserves[i + 1], &rgpu_g.reserves[i], (rgpu_g.nreserves - i) * sizeof(*rgpu_g.reserves));
        rgpu_g.reserves[i] = (struct rgpu_range){ at, size };
        rgpu_g.nreserves++;
        *ptr = (CUdeviceptr)at;
    }
    rgpu_rpc_unlock();
    if (rc) rgpu_trace("cuMemAddressReserve(%zu): no room in the session's va window -> CUresult %d", size, (int)rc);
    return rc;
}

/* The reservation that contains [addr, addr+size), or NULL. */
static struct rgpu_range *reservation_of(uint64_t addr, uint64_t size)
{
    size_t i = reserve_index(addr);
    if (i == 0) return NULL;
    struct rgpu_range *r = &rgpu_g.reserves[i - 1];
    return addr + size <= r->addr + r->size && addr + size > addr ? r : NULL;
}

static int has_mapping_in(uint64_t addr, uint64_t size)
{
    for (size_t i = 0; i < rgpu_g.nallocs; i++) {
        const struct rgpu_alloc *a = &rgpu_g.allocs[i];
        if (a->kind == RGPU_ALLOC_MAPPED && a->addr < addr + size && a->addr + a->size > addr) return 1;
    }
    return 0;
}

RGPU_EXPORT CUresult CUDAAPI cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    rgpu_rpc_lock();
    size_t i = reserve_index(ptr);
    struct rgpu_range *r = i ? &rgpu_g.reserves[i - 1] : NULL;
    if (!r || r->addr != ptr || r->size != size) rc = CUDA_ERROR_INVALID_VALUE;
    else if (has_mapping_in(ptr, size)) {
        rgpu_trace("cuMemAddressFree(0x%llx): the range is still mapped -> CUDA_ERROR_INVALID_VALUE", (unsigned long long)ptr);
        rc = CUDA_ERROR_INVALID_VALUE;
    } else {
        /* parked handles inside stay where they are: their entries keep the allocator away */
        memmove(r, r + 1, (rgpu_g.nreserves - i) * sizeof(*r));
        rgpu_g.nreserves--;
    }
    rgpu_rpc_unlock();
    return rc;
}

/* ---- physical handles ---- */

RGPU_EXPORT CUresult CUDAAPI cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size, const CUmemAllocationProp *prop,
                                         unsigned long long flags)
{
    if (!handle) return CUDA_ERROR_INVALID_VALUE;
    CHECK_CTX();
    CUresult rc = check_prop(prop);
    if (rc) return rc;
    if (!size || size % GRANULE || flags) return CUDA_ERROR_INVALID_VALUE;
    /* Requested export handle types are accepted (PyTorch always asks for a POSIX fd); exporting itself,
     * cuMemExportToShareableHandle, is not supported. */
    struct vmm_handle *v = calloc(1, sizeof(*v));
    if (!v) return CUDA_ERROR_OUT_OF_MEMORY;
    rgpu_rpc_lock();
    if (rgpu_g.mem_used + size > rgpu_g.quota_mem) {
        rgpu_rpc_unlock();
        free(v);
        rgpu_trace("cuMemCreate(%zu): out of memory (%llu of %llu bytes used)", size,
                   (unsigned long long)rgpu_g.mem_used, (unsigned long long)rgpu_g.quota_mem);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    rgpu_g.mem_used += size;
    *v = (struct vmm_handle){ RGPU_MAGIC_VMM, rgpu_g.vmm_gen, size, 1, 0, 0, 0, *prop };
    rgpu_rpc_unlock();
    *handle = (CUmemGenericAllocationHandle)(uintptr_t)v;
    return CUDA_SUCCESS;
}

/* The handle's memory goes (server free if it has any) and so does the handle. */
static CUresult destroy_locked(struct vmm_handle *v)
{
    CUresult rc = CUDA_SUCCESS;
    if (live(v)) {
        if (v->addr) {
            rgpu_memory_remove_locked(v->addr);
            rgpu_mem_free_args a = { v->addr };
            rc = rgpu_rpc_post_locked(RGPU_OP_MEM_FREE, 0, &a, sizeof(a), NULL, 0);
        }
        rgpu_g.mem_used -= v->size;
    }
    v->magic = 0;
    free(v);
    return rc;
}

RGPU_EXPORT CUresult CUDAAPI cuMemRelease(CUmemGenericAllocationHandle handle)
{
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    rgpu_rpc_lock();
    struct vmm_handle *v = handle_of(handle);
    if (!v || v->refs <= 0) rc = CUDA_ERROR_INVALID_VALUE;
    else if (--v->refs == 0 && (!v->mapped || !live(v))) rc = destroy_locked(v);
    /* still mapped: the memory goes with the last cuMemUnmap, as CUDA specifies */
    rgpu_rpc_unlock();
    return rc;
}

/* Moves a handle's memory to `to` (already free): alloc, device-to-device copy, free — stream-ordered on
 * the legacy stream, so work queued before on blocking streams has read or written the old place. The
 * server briefly holds both copies, which the quota must allow. */
static CUresult move_locked(struct vmm_handle *v, uint64_t to, int kind)
{
    if (rgpu_g.mem_used + v->size > rgpu_g.quota_mem) {
        rgpu_trace("VMM: moving a %llu-byte allocation needs that much free quota -> CUDA_ERROR_OUT_OF_MEMORY",
                   (unsigned long long)v->size);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult rc = rgpu_memory_insert_locked(to, v->size, kind, v);
    if (rc) return rc;
    uint64_t from = v->addr;
    rgpu_mem_alloc_args al = { to, v->size };
    rgpu_memcpy_dtod_args cp = { to, from, v->size };
    rgpu_mem_free_args fr = { from };
    rc = rgpu_rpc_post_locked(RGPU_OP_MEM_ALLOC, 0, &al, sizeof(al), NULL, 0);
    if (!rc) rc = rgpu_rpc_post_locked(RGPU_OP_MEMCPY_DTOD, 0, &cp, sizeof(cp), NULL, 0);
    if (!rc) rc = rgpu_rpc_post_locked(RGPU_OP_MEM_FREE, 0, &fr, sizeof(fr), NULL, 0);
    rgpu_memory_remove_locked(from);
    v->addr = to;
    return rc;
}

RGPU_EXPORT CUresult CUDAAPI cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
                                      unsigned long long flags)
{
    CHECK_CTX();
    if (flags || !size || ptr % GRANULE) return CUDA_ERROR_INVALID_VALUE;
    rgpu_rpc_lock();
    CUresult rc = CUDA_SUCCESS;
    struct vmm_handle *v = handle_of(handle);
    if (!v || v->refs <= 0 || !live(v)) { rc = CUDA_ERROR_INVALID_HANDLE; goto out; }
    if (offset || size != v->size) {
        rgpu_trace("cuMemMap: mapping part of a handle (offset %zu, %zu of %llu bytes) -> CUDA_ERROR_NOT_SUPPORTED",
                   offset, size, (unsigned long long)v->size);
        rc = offset + size > v->size || offset + size < offset ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_SUPPORTED;
        goto out;
    }
    if (v->mapped) {
        rgpu_trace("cuMemMap: handle already mapped at 0x%llx; a second mapping would alias -> CUDA_ERROR_NOT_SUPPORTED",
                   (unsigned long long)v->addr);
        rc = CUDA_ERROR_NOT_SUPPORTED;
        goto out;
    }
    if (!reservation_of(ptr, size)) { rc = CUDA_ERROR_INVALID_VALUE; goto out; }
    /* Whatever occupies the range: a mapping is an error; parked memory (this handle's or another's) is
     * either reused in place or moved out of the way. */
    for (;;) {
        struct rgpu_alloc *a = NULL;
        for (size_t i = 0; i < rgpu_g.nallocs; i++)
            if (rgpu_g.allocs[i].addr < ptr + size && rgpu_g.allocs[i].addr + rgpu_g.allocs[i].size > ptr) {
                a = &rgpu_g.allocs[i];
                break;
            }
        if (!a) break;
        if (a->kind != RGPU_ALLOC_PARKED) { rc = CUDA_ERROR_INVALID_VALUE; goto out; }
        if (a->owner == v && a->addr == ptr) break;
        struct vmm_handle *o = a->owner;
        uint64_t to;
        if ((rc = rgpu_memory_gap_locked(o->size, GRANULE, 1, &to)) || (rc = move_locked(o, to, RGPU_ALLOC_PARKED))) goto out;
    }
    if (v->addr == ptr) {
        rgpu_memory_find_locked(ptr)->kind = RGPU_ALLOC_MAPPED;
    } else if (v->addr) {
        rc = move_locked(v, ptr, RGPU_ALLOC_MAPPED);
    } else {
        rc = rgpu_memory_insert_locked(ptr, size, RGPU_ALLOC_MAPPED, v);
        rgpu_mem_alloc_args a = { ptr, size };
        if (!rc) rc = rgpu_rpc_post_locked(RGPU_OP_MEM_ALLOC, 0, &a, sizeof(a), NULL, 0);
        if (!rc) v->addr = ptr;
        else rgpu_memory_remove_locked(ptr);
    }
    if (!rc) { v->mapped = 1; v->access = 0; }
out:
    rgpu_rpc_unlock();
    return rc;
}

RGPU_EXPORT CUresult CUDAAPI cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    rgpu_rpc_lock();
    struct rgpu_alloc *a = rgpu_memory_find_locked(ptr);
    if (!a || a->kind != RGPU_ALLOC_MAPPED || a->addr != ptr || a->size != size) {
        rgpu_trace("cuMemUnmap(0x%llx, %zu): not exactly one mapping -> CUDA_ERROR_INVALID_VALUE", (unsigned long long)ptr, size);
        rc = CUDA_ERROR_INVALID_VALUE;
    } else {
        struct vmm_handle *v = a->owner;
        v->mapped = 0;
        v->access = 0;
        if (v->refs == 0) rc = destroy_locked(v);
        else a->kind = RGPU_ALLOC_PARKED;
    }
    rgpu_rpc_unlock();
    return rc;
}

/* ---- access and queries ---- */

RGPU_EXPORT CUresult CUDAAPI cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count)
{
    if (!desc || !count || !size) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    unsigned long long flags = 0;
    for (size_t i = 0; i < count; i++) {
        if ((rc = check_location(&desc[i].location))) return rc;
        if (desc[i].flags != CU_MEM_ACCESS_FLAGS_PROT_NONE && desc[i].flags != CU_MEM_ACCESS_FLAGS_PROT_READ &&
            desc[i].flags != CU_MEM_ACCESS_FLAGS_PROT_READWRITE) return CUDA_ERROR_INVALID_VALUE;
        flags = desc[i].flags;
    }
    rgpu_rpc_lock();
    /* the range must be covered by mappings, end to end */
    for (uint64_t at = ptr; !rc && at < ptr + size;) {
        struct rgpu_alloc *a = rgpu_memory_find_locked(at);
        if (!a || a->kind != RGPU_ALLOC_MAPPED) rc = CUDA_ERROR_INVALID_VALUE;
        else at = a->addr + a->size;
    }
    for (uint64_t at = ptr; !rc && at < ptr + size;) {
        struct rgpu_alloc *a = rgpu_memory_find_locked(at);
        ((struct vmm_handle *)a->owner)->access = flags;
        at = a->addr + a->size;
    }
    rgpu_rpc_unlock();
    if (rc) rgpu_trace("cuMemSetAccess(0x%llx, %zu): not a mapped range -> CUDA_ERROR_INVALID_VALUE", (unsigned long long)ptr, size);
    return rc;
}

RGPU_EXPORT CUresult CUDAAPI cuMemGetAccess(unsigned long long *flags, const CUmemLocation *location, CUdeviceptr ptr)
{
    if (!flags || !location) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_rpc_ready();
    if (rc || (rc = check_location(location))) return rc;
    rgpu_rpc_lock();
    struct rgpu_alloc *a = rgpu_memory_find_locked(ptr);
    if (!a || a->kind != RGPU_ALLOC_MAPPED) rc = CUDA_ERROR_INVALID_VALUE;
    else *flags = ((struct vmm_handle *)a->owner)->access;
    rgpu_rpc_unlock();
    return rc;
}

RGPU_EXPORT CUresult CUDAAPI cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp *prop, CUmemGenericAllocationHandle handle)
{
    if (!prop) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    rgpu_rpc_lock();
    struct vmm_handle *v = handle_of(handle);
    if (!v || v->refs <= 0 || !live(v)) rc = CUDA_ERROR_INVALID_VALUE;
    else *prop = v->prop;
    rgpu_rpc_unlock();
    return rc;
}

RGPU_EXPORT CUresult CUDAAPI cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr)
{
    if (!handle) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    rgpu_rpc_lock();
    struct rgpu_alloc *a = rgpu_memory_find_locked((uint64_t)(uintptr_t)addr);
    if (!a || a->kind != RGPU_ALLOC_MAPPED) rc = CUDA_ERROR_INVALID_VALUE;
    else {
        struct vmm_handle *v = a->owner;
        v->refs++;
        *handle = (CUmemGenericAllocationHandle)(uintptr_t)v;
    }
    rgpu_rpc_unlock();
    return rc;
}
