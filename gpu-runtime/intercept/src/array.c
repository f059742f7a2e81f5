/* CUDA arrays, texture objects and surface objects. An array is device memory in the session's va window,
 * laid out row-major and tightly packed (the ARRAY_CREATE contract in ops.yaml), so copies to and from
 * arrays become ordinary pitched copies here and the server never sees an array in a copy. Handles are
 * minted locally and every create is validated here first, so its errors are synchronous and the frame
 * needs no reply. Mipmapped arrays, cubemaps, resource views and sparse/deferred arrays are refused. */
#include "rgpu.h"

#include <stdlib.h>
#include <string.h>

#define ARRAY_ALIGN 256u
#define RGPU_MAGIC_ARRAY 0x41525231u
/* Array flags this runtime honours; the rest (cubemap, sparse, deferred mapping, ...) are refused. */
#define ARRAY_FLAGS_OK (CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_SURFACE_LDST | CUDA_ARRAY3D_TEXTURE_GATHER)

struct rgpu_array {
    uint32_t magic;
    uint64_t addr, bytes;
    uint64_t es;   /* element bytes */
    uint64_t rows; /* rows per slice: max(Height, 1) */
    uint64_t slices; /* max(Depth, 1) */
    CUDA_ARRAY3D_DESCRIPTOR d;
};

struct obj {
    uint64_t handle;
    int surface;
    CUDA_RESOURCE_DESC res;
    CUDA_TEXTURE_DESC tex;
};

/* Guarded by rgpu_g.lock. Arrays are looked up by pointer before any dereference, so a stale or foreign
 * CUarray is an error and never a crash. */
static struct rgpu_array **arrays;
static size_t narrays, cap_arrays;
static struct obj *objs;
static size_t nobjs, cap_objs;
static uint64_t next_handle = 1;
int rgpu_array_textures;

static size_t format_bytes(CUarray_format f)
{
    switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8: case CU_AD_FORMAT_SIGNED_INT8: return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16: case CU_AD_FORMAT_SIGNED_INT16: case CU_AD_FORMAT_HALF: return 2;
    case CU_AD_FORMAT_UNSIGNED_INT32: case CU_AD_FORMAT_SIGNED_INT32: case CU_AD_FORMAT_FLOAT: return 4;
    default: return 0;
    }
}

static int is_int_format(CUarray_format f) { return f != CU_AD_FORMAT_HALF && f != CU_AD_FORMAT_FLOAT; }

/* An array whose memory is gone (cudaDeviceReset frees every allocation) is listed but not live: its
 * allocation-table entry, owned by the array, is what says it still exists. */
static struct rgpu_array *listed_locked(CUarray a)
{
    for (size_t i = 0; i < narrays; i++)
        if (arrays[i] == (struct rgpu_array *)a) return arrays[i];
    return NULL;
}

static int live_locked(const struct rgpu_array *a)
{
    struct rgpu_alloc *al = rgpu_memory_find_locked(a->addr);
    return al && al->addr == a->addr && al->owner == a;
}

static struct rgpu_array *array_of_locked(CUarray h)
{
    struct rgpu_array *a = listed_locked(h);
    return a && live_locked(a) ? a : NULL;
}

static struct obj *obj_of_locked(uint64_t h, int surface)
{
    for (size_t i = 0; i < nobjs; i++)
        if (objs[i].handle == h && objs[i].surface == surface) return &objs[i];
    return NULL;
}

/* ---- arrays ---- */

static CUresult array_create(CUarray *out, const CUDA_ARRAY3D_DESCRIPTOR *d, const char *who)
{
    if (!out || !d) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_context_check();
    if (rc) return rc;
    size_t cs = format_bytes(d->Format);
    if (!cs) { rgpu_trace("%s: array format 0x%x -> CUDA_ERROR_NOT_SUPPORTED", who, (unsigned)d->Format); return CUDA_ERROR_NOT_SUPPORTED; }
    if (d->Flags & ~(unsigned)ARRAY_FLAGS_OK) {
        rgpu_trace("%s: array flags 0x%x (cubemap/sparse/deferred/depth/colour attachment) -> CUDA_ERROR_NOT_SUPPORTED", who, d->Flags);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    int layered = (d->Flags & CUDA_ARRAY3D_LAYERED) != 0;
    if ((d->NumChannels != 1 && d->NumChannels != 2 && d->NumChannels != 4) || !d->Width ||
        (!d->Height && d->Depth && !layered) || (layered && !d->Depth))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t es = cs * d->NumChannels, rows = d->Height ? d->Height : 1, slices = d->Depth ? d->Depth : 1;
    uint64_t bytes = d->Width * es;
    if (bytes / es != d->Width || bytes * rows / rows != bytes || bytes * rows * slices / slices != bytes * rows)
        return CUDA_ERROR_INVALID_VALUE;
    bytes *= rows * slices;
    struct rgpu_array *a = calloc(1, sizeof(*a));
    if (!a) return CUDA_ERROR_OUT_OF_MEMORY;
    *a = (struct rgpu_array){ RGPU_MAGIC_ARRAY, 0, bytes, es, rows, slices, *d };
    uint64_t sz = (bytes + ARRAY_ALIGN - 1) & ~(uint64_t)(ARRAY_ALIGN - 1);
    rgpu_rpc_lock();
    if (narrays == cap_arrays) {
        size_t cap = cap_arrays ? cap_arrays * 2 : 16;
        void *n = realloc(arrays, cap * sizeof(*arrays));
        if (!n) { rc = CUDA_ERROR_OUT_OF_MEMORY; goto fail; }
        arrays = n;
        cap_arrays = cap;
    }
    if (rgpu_g.mem_used + sz > rgpu_g.quota_mem || sz < bytes) { rc = CUDA_ERROR_OUT_OF_MEMORY; goto fail; }
    if ((rc = rgpu_memory_gap_locked(sz, ARRAY_ALIGN, 1, &a->addr))) goto fail;
    if ((rc = rgpu_memory_insert_locked(a->addr, sz, RGPU_ALLOC_PLAIN, a))) goto fail;
    rgpu_array_create_args args = { a->addr, d->Width, d->Height, d->Depth, (uint32_t)d->Format, d->NumChannels, d->Flags };
    if ((rc = rgpu_rpc_post_locked(RGPU_OP_ARRAY_CREATE, 0, &args, sizeof(args), NULL, 0))) {
        rgpu_memory_remove_locked(a->addr);
        goto fail;
    }
    rgpu_g.mem_used += sz;
    arrays[narrays++] = a;
    rgpu_rpc_unlock();
    *out = (CUarray)a;
    return CUDA_SUCCESS;
fail:
    rgpu_rpc_unlock();
    free(a);
    if (rc == CUDA_ERROR_OUT_OF_MEMORY) rgpu_trace("%s: %llu bytes: out of memory", who, (unsigned long long)bytes);
    return rc;
}

RGPU_EXPORT CUresult CUDAAPI cuArray3DCreate_v2(CUarray *out, const CUDA_ARRAY3D_DESCRIPTOR *d)
{
    return array_create(out, d, "cuArray3DCreate");
}

RGPU_EXPORT CUresult CUDAAPI cuArrayCreate_v2(CUarray *out, const CUDA_ARRAY_DESCRIPTOR *d)
{
    if (!d) return CUDA_ERROR_INVALID_VALUE;
    CUDA_ARRAY3D_DESCRIPTOR d3 = { d->Width, d->Height, 0, d->Format, d->NumChannels, 0 };
    return array_create(out, &d3, "cuArrayCreate");
}

RGPU_EXPORT CUresult CUDAAPI cuArrayDestroy(CUarray h)
{
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    rgpu_rpc_lock();
    struct rgpu_array *a = listed_locked(h);
    if (!a) { rgpu_rpc_unlock(); return CUDA_ERROR_INVALID_HANDLE; }
    for (size_t i = 0; i < narrays; i++)
        if (arrays[i] == a) { arrays[i] = arrays[--narrays]; break; }
    if (live_locked(a)) { /* else a reset already freed it, and its address may belong to someone else now */
        rgpu_g.mem_used -= rgpu_memory_find_locked(a->addr)->size;
        rgpu_memory_remove_locked(a->addr);
        rgpu_array_destroy_args args = { a->addr };
        rc = rgpu_rpc_post_locked(RGPU_OP_ARRAY_DESTROY, 0, &args, sizeof(args), NULL, 0);
    }
    rgpu_rpc_unlock();
    a->magic = 0;
    free(a);
    return rc;
}

static CUresult array_desc(CUarray h, CUDA_ARRAY3D_DESCRIPTOR *out)
{
    if (!out) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    rgpu_rpc_lock();
    struct rgpu_array *a = array_of_locked(h);
    if (a) *out = a->d;
    rgpu_rpc_unlock();
    return a ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

RGPU_EXPORT CUresult CUDAAPI cuArray3DGetDescriptor_v2(CUDA_ARRAY3D_DESCRIPTOR *out, CUarray h) { return array_desc(h, out); }

RGPU_EXPORT CUresult CUDAAPI cuArrayGetDescriptor_v2(CUDA_ARRAY_DESCRIPTOR *out, CUarray h)
{
    if (!out) return CUDA_ERROR_INVALID_VALUE;
    CUDA_ARRAY3D_DESCRIPTOR d;
    CUresult rc = array_desc(h, &d);
    if (rc) return rc;
    if (d.Depth) return CUDA_ERROR_INVALID_VALUE; /* a 3D or layered array has no 2D descriptor */
    *out = (CUDA_ARRAY_DESCRIPTOR){ d.Width, d.Height, d.Format, d.NumChannels };
    return CUDA_SUCCESS;
}

/* ---- copies: an array end becomes device memory in the packed layout ---- */

/* Device address of (x bytes, y, z) in array h after checking a w x h x d box fits; 0 on a bad box. */
static uint64_t array_box(CUarray h, uint64_t x, uint64_t y, uint64_t z, uint64_t w, uint64_t hgt, uint64_t d,
                          uint64_t *pitch, uint64_t *rows, CUresult *rc)
{
    rgpu_rpc_lock();
    struct rgpu_array *a = array_of_locked(h);
    uint64_t addr = 0;
    if (!a) *rc = CUDA_ERROR_INVALID_HANDLE;
    else if (x + w > a->d.Width * a->es || y + hgt > a->rows || z + d > a->slices || x + w < x) *rc = CUDA_ERROR_INVALID_VALUE;
    else {
        *pitch = a->d.Width * a->es;
        *rows = a->rows;
        addr = a->addr + (z * a->rows + y) * *pitch + x;
        *rc = CUDA_SUCCESS;
    }
    rgpu_rpc_unlock();
    return addr;
}

CUresult rgpu_array_flatten2d(const CUDA_MEMCPY2D *c, CUDA_MEMCPY2D *out)
{
    CUresult rc = CUDA_SUCCESS;
    uint64_t pitch, rows;
    *out = *c;
    if (c->srcMemoryType == CU_MEMORYTYPE_ARRAY) {
        out->srcDevice = array_box(c->srcArray, c->srcXInBytes, c->srcY, 0, c->WidthInBytes, c->Height, 1, &pitch, &rows, &rc);
        if (rc) return rc;
        out->srcMemoryType = CU_MEMORYTYPE_DEVICE;
        out->srcXInBytes = out->srcY = 0;
        out->srcPitch = pitch;
    }
    if (c->dstMemoryType == CU_MEMORYTYPE_ARRAY) {
        out->dstDevice = array_box(c->dstArray, c->dstXInBytes, c->dstY, 0, c->WidthInBytes, c->Height, 1, &pitch, &rows, &rc);
        if (rc) return rc;
        out->dstMemoryType = CU_MEMORYTYPE_DEVICE;
        out->dstXInBytes = out->dstY = 0;
        out->dstPitch = pitch;
    }
    return rc;
}

/* One side of a 3D copy as a pitched 2D origin: base of slice z0, row pitch and slice pitch. */
struct side { CUmemorytype type; uint64_t dev; uint8_t *host; uint64_t pitch, slice; };

static CUresult side_of(CUmemorytype t, uint64_t x, uint64_t y, uint64_t z, const void *host, CUdeviceptr dev, CUarray arr,
                        uint64_t pitch, uint64_t height, const CUDA_MEMCPY3D *c, struct side *s)
{
    if (t == CU_MEMORYTYPE_ARRAY) {
        uint64_t rows;
        CUresult rc;
        s->type = CU_MEMORYTYPE_DEVICE;
        s->dev = array_box(arr, x, y, z, c->WidthInBytes, c->Height, c->Depth, &s->pitch, &rows, &rc);
        s->slice = s->pitch * rows;
        return rc;
    }
    if (t == CU_MEMORYTYPE_UNIFIED) t = rgpu_memory_is_device(dev, 1) ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
    if (t == CU_MEMORYTYPE_UNIFIED || (t != CU_MEMORYTYPE_HOST && t != CU_MEMORYTYPE_DEVICE)) return CUDA_ERROR_INVALID_VALUE;
    s->type = t;
    s->pitch = pitch ? pitch : c->WidthInBytes;
    if (s->pitch < c->WidthInBytes) return CUDA_ERROR_INVALID_VALUE;
    s->slice = s->pitch * (height ? height : c->Height);
    uint64_t off = z * s->slice + y * s->pitch + x;
    if (t == CU_MEMORYTYPE_HOST) s->host = (uint8_t *)host + off;
    else s->dev = dev + off;
    return CUDA_SUCCESS;
}

/* Runs one 2D copy with the variant the 3D call came in as (stream, per-thread default stream). */
static CUresult run2d(const CUDA_MEMCPY2D *c, CUstream s, int async, int ptds)
{
    if (async) return ptds ? cuMemcpy2DAsync_v2_ptsz(c, s) : cuMemcpy2DAsync_v2(c, s);
    return ptds ? cuMemcpy2D_v2_ptds(c) : cuMemcpy2D_v2(c);
}

static CUresult copy3d(const CUDA_MEMCPY3D *c, CUstream stream, int async, int ptds)
{
    if (!c) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_context_check();
    if (rc) return rc;
    if (c->srcLOD || c->dstLOD) return CUDA_ERROR_INVALID_VALUE; /* no mipmaps: level 0 is all there is */
    if (!c->WidthInBytes || !c->Height || !c->Depth) return CUDA_SUCCESS;
    struct side s, d;
    rc = side_of(c->srcMemoryType, c->srcXInBytes, c->srcY, c->srcZ, c->srcHost, c->srcDevice, c->srcArray, c->srcPitch, c->srcHeight, c, &s);
    if (!rc) rc = side_of(c->dstMemoryType, c->dstXInBytes, c->dstY, c->dstZ, c->dstHost, c->dstDevice, c->dstArray, c->dstPitch, c->dstHeight, c, &d);
    if (rc) return rc;
    /* Slices whose rows follow each other on both sides (the whole-volume case) go as one copy. */
    int joined = s.slice == s.pitch * c->Height && d.slice == d.pitch * c->Height;
    uint64_t nslices = joined ? 1 : c->Depth, rows = joined ? c->Height * c->Depth : c->Height;
    for (uint64_t z = 0; !rc && z < nslices; z++) {
        CUDA_MEMCPY2D p = { 0 };
        p.srcMemoryType = s.type;
        p.srcPitch = s.pitch;
        if (s.type == CU_MEMORYTYPE_HOST) p.srcHost = s.host + z * s.slice; else p.srcDevice = s.dev + z * s.slice;
        p.dstMemoryType = d.type;
        p.dstPitch = d.pitch;
        if (d.type == CU_MEMORYTYPE_HOST) p.dstHost = d.host + z * d.slice; else p.dstDevice = d.dev + z * d.slice;
        p.WidthInBytes = c->WidthInBytes;
        p.Height = rows;
        rc = run2d(&p, stream, async, ptds);
    }
    return rc;
}

RGPU_EXPORT CUresult CUDAAPI cuMemcpy3D_v2(const CUDA_MEMCPY3D *c) { return copy3d(c, NULL, 0, 0); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpy3D_v2_ptds(const CUDA_MEMCPY3D *c) { return copy3d(c, NULL, 0, 1); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpy3DAsync_v2(const CUDA_MEMCPY3D *c, CUstream s) { return copy3d(c, s, 1, 0); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpy3DAsync_v2_ptsz(const CUDA_MEMCPY3D *c, CUstream s) { return copy3d(c, s, 1, 1); }

/* 1D copies at a byte offset into an array: the packed layout makes them linear copies. */
static uint64_t array_at(CUarray h, size_t off, size_t n, CUresult *rc)
{
    rgpu_rpc_lock();
    struct rgpu_array *a = array_of_locked(h);
    uint64_t addr = 0;
    if (!a) *rc = CUDA_ERROR_INVALID_HANDLE;
    else if (off + n > a->bytes || off + n < off) *rc = CUDA_ERROR_INVALID_VALUE;
    else { addr = a->addr + off; *rc = CUDA_SUCCESS; }
    rgpu_rpc_unlock();
    return addr;
}

#define AT(h, off, n) CUresult rc_; uint64_t at_ = array_at(h, off, n, &rc_); if (rc_) return rc_
RGPU_EXPORT CUresult CUDAAPI cuMemcpyHtoA_v2(CUarray d, size_t off, const void *src, size_t n) { AT(d, off, n); return cuMemcpyHtoD_v2(at_, src, n); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyHtoA_v2_ptds(CUarray d, size_t off, const void *src, size_t n) { AT(d, off, n); return cuMemcpyHtoD_v2_ptds(at_, src, n); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyHtoAAsync_v2(CUarray d, size_t off, const void *src, size_t n, CUstream s) { AT(d, off, n); return cuMemcpyHtoDAsync_v2(at_, src, n, s); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyHtoAAsync_v2_ptsz(CUarray d, size_t off, const void *src, size_t n, CUstream s) { AT(d, off, n); return cuMemcpyHtoDAsync_v2_ptsz(at_, src, n, s); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyAtoH_v2(void *dst, CUarray a, size_t off, size_t n) { AT(a, off, n); return cuMemcpyDtoH_v2(dst, at_, n); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyAtoH_v2_ptds(void *dst, CUarray a, size_t off, size_t n) { AT(a, off, n); return cuMemcpyDtoH_v2_ptds(dst, at_, n); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyAtoHAsync_v2(void *dst, CUarray a, size_t off, size_t n, CUstream s) { AT(a, off, n); return cuMemcpyDtoHAsync_v2(dst, at_, n, s); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyAtoHAsync_v2_ptsz(void *dst, CUarray a, size_t off, size_t n, CUstream s) { AT(a, off, n); return cuMemcpyDtoHAsync_v2_ptsz(dst, at_, n, s); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyDtoA_v2(CUarray d, size_t off, CUdeviceptr src, size_t n) { AT(d, off, n); return cuMemcpyDtoD_v2(at_, src, n); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyDtoA_v2_ptds(CUarray d, size_t off, CUdeviceptr src, size_t n) { AT(d, off, n); return cuMemcpyDtoD_v2_ptds(at_, src, n); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyAtoD_v2(CUdeviceptr dst, CUarray a, size_t off, size_t n) { AT(a, off, n); return cuMemcpyDtoD_v2(dst, at_, n); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyAtoD_v2_ptds(CUdeviceptr dst, CUarray a, size_t off, size_t n) { AT(a, off, n); return cuMemcpyDtoD_v2_ptds(dst, at_, n); }
RGPU_EXPORT CUresult CUDAAPI cuMemcpyAtoA_v2(CUarray d, size_t doff, CUarray a, size_t soff, size_t n)
{
    CUresult rc;
    uint64_t dst = array_at(d, doff, n, &rc);
    if (rc) return rc;
    uint64_t src = array_at(a, soff, n, &rc);
    return rc ? rc : cuMemcpyDtoD_v2(dst, src, n);
}
RGPU_EXPORT CUresult CUDAAPI cuMemcpyAtoA_v2_ptds(CUarray d, size_t doff, CUarray a, size_t soff, size_t n)
{
    CUresult rc;
    uint64_t dst = array_at(d, doff, n, &rc);
    if (rc) return rc;
    uint64_t src = array_at(a, soff, n, &rc);
    return rc ? rc : cuMemcpyDtoD_v2_ptds(dst, src, n);
}
#undef AT

/* ---- texture and surface objects ---- */

/* The resource as the server expects it (ops.yaml TEXOBJ_CREATE), after local checks. */
static CUresult put_resource_locked(struct rgpu_mp_writer *w, const CUDA_RESOURCE_DESC *r, CUarray_format *fmt, int surface)
{
    switch (r->resType) {
    case CU_RESOURCE_TYPE_ARRAY: {
        struct rgpu_array *a = array_of_locked(r->res.array.hArray);
        if (!a) return CUDA_ERROR_INVALID_HANDLE;
        if (surface && !(a->d.Flags & CUDA_ARRAY3D_SURFACE_LDST)) return CUDA_ERROR_INVALID_VALUE;
        *fmt = a->d.Format;
        rgpu_mp_map(w, 2);
        rgpu_mp_str(w, "type"); rgpu_mp_uint(w, 0);
        rgpu_mp_str(w, "array"); rgpu_mp_uint(w, a->addr);
        return CUDA_SUCCESS;
    }
    case CU_RESOURCE_TYPE_LINEAR: case CU_RESOURCE_TYPE_PITCH2D: {
        if (surface) return CUDA_ERROR_INVALID_VALUE;
        int lin = r->resType == CU_RESOURCE_TYPE_LINEAR;
        CUarray_format f = lin ? r->res.linear.format : r->res.pitch2D.format;
        unsigned nc = lin ? r->res.linear.numChannels : r->res.pitch2D.numChannels;
        CUdeviceptr p = lin ? r->res.linear.devPtr : r->res.pitch2D.devPtr;
        size_t cs = format_bytes(f);
        if (!cs) return CUDA_ERROR_NOT_SUPPORTED;
        if (nc != 1 && nc != 2 && nc != 4) return CUDA_ERROR_INVALID_VALUE;
        if (p % cs) return CUDA_ERROR_INVALID_VALUE;
        uint64_t es = cs * nc, span;
        if (lin) {
            if (r->res.linear.sizeInBytes < es) return CUDA_ERROR_INVALID_VALUE;
            span = r->res.linear.sizeInBytes;
        } else {
            uint64_t wd = r->res.pitch2D.width, ht = r->res.pitch2D.height, pitch = r->res.pitch2D.pitchInBytes;
            if (!wd || !ht || pitch < wd * es) return CUDA_ERROR_INVALID_VALUE;
            span = pitch * (ht - 1) + wd * es;
        }
        if (!rgpu_memory_is_device(p, span)) return CUDA_ERROR_INVALID_VALUE;
        *fmt = f;
        rgpu_mp_map(w, lin ? 5 : 7);
        rgpu_mp_str(w, "type"); rgpu_mp_uint(w, lin ? 2 : 3);
        rgpu_mp_str(w, "addr"); rgpu_mp_uint(w, p);
        rgpu_mp_str(w, "format"); rgpu_mp_uint(w, (uint64_t)f);
        rgpu_mp_str(w, "channels"); rgpu_mp_uint(w, nc);
        if (lin) { rgpu_mp_str(w, "size"); rgpu_mp_uint(w, r->res.linear.sizeInBytes); }
        else {
            rgpu_mp_str(w, "width"); rgpu_mp_uint(w, r->res.pitch2D.width);
            rgpu_mp_str(w, "height"); rgpu_mp_uint(w, r->res.pitch2D.height);
            rgpu_mp_str(w, "pitch"); rgpu_mp_uint(w, r->res.pitch2D.pitchInBytes);
        }
        return CUDA_SUCCESS;
    }
    case CU_RESOURCE_TYPE_MIPMAPPED_ARRAY:
        rgpu_trace("texture/surface object on a mipmapped array -> CUDA_ERROR_NOT_SUPPORTED");
        return CUDA_ERROR_NOT_SUPPORTED;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

static CUresult add_obj_locked(uint64_t h, int surface, const CUDA_RESOURCE_DESC *r, const CUDA_TEXTURE_DESC *t)
{
    if (nobjs == cap_objs) {
        size_t cap = cap_objs ? cap_objs * 2 : 16;
        void *n = realloc(objs, cap * sizeof(*objs));
        if (!n) return CUDA_ERROR_OUT_OF_MEMORY;
        objs = n;
        cap_objs = cap;
    }
    struct obj *o = &objs[nobjs++];
    memset(o, 0, sizeof(*o));
    o->handle = h;
    o->surface = surface;
    o->res = *r;
    if (t) o->tex = *t;
    return CUDA_SUCCESS;
}

static CUresult create_obj(uint64_t *out, const CUDA_RESOURCE_DESC *r, const CUDA_TEXTURE_DESC *t,
                           const CUDA_RESOURCE_VIEW_DESC *view)
{
    int surface = t == NULL;
    if (!out || !r) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_context_check();
    if (rc) return rc;
    if (view) {
        rgpu_trace("cuTexObjectCreate with a resource view -> CUDA_ERROR_NOT_SUPPORTED");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (!rgpu_array_textures) { /* the kernel would otherwise run with a handle the device never saw */
        rgpu_trace("%s: the server's device has no texture/surface objects -> CUDA_ERROR_NOT_SUPPORTED", surface ? "cuSurfObjectCreate" : "cuTexObjectCreate");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (t) {
        for (int i = 0; i < 3; i++)
            if ((unsigned)t->addressMode[i] > CU_TR_ADDRESS_MODE_BORDER) return CUDA_ERROR_INVALID_VALUE;
        if ((unsigned)t->filterMode > CU_TR_FILTER_MODE_LINEAR) return CUDA_ERROR_INVALID_VALUE;
    }
    struct rgpu_mp_writer w;
    rgpu_mp_init(&w);
    rgpu_rpc_lock();
    uint64_t h = next_handle;
    CUarray_format fmt = CU_AD_FORMAT_FLOAT;
    rgpu_mp_array(&w, surface ? 2 : 4);
    rgpu_mp_uint(&w, h);
    rc = put_resource_locked(&w, r, &fmt, surface);
    if (!rc && t) {
        /* The rules the device enforces, checked here so the error is synchronous: linear filtering needs a
         * float result, and linear memory is fetched by index only. */
        int int_read = is_int_format(fmt) && ((t->flags & CU_TRSF_READ_AS_INTEGER) || format_bytes(fmt) == 4);
        if (t->filterMode == CU_TR_FILTER_MODE_LINEAR && int_read) rc = CUDA_ERROR_INVALID_VALUE;
        if (r->resType == CU_RESOURCE_TYPE_LINEAR && (t->filterMode == CU_TR_FILTER_MODE_LINEAR || (t->flags & CU_TRSF_NORMALIZED_COORDINATES)))
            rc = CUDA_ERROR_INVALID_VALUE;
    }
    if (!rc && t) {
        rgpu_mp_map(&w, 4);
        rgpu_mp_str(&w, "address");
        rgpu_mp_array(&w, 3);
        for (int i = 0; i < 3; i++) rgpu_mp_uint(&w, (uint64_t)t->addressMode[i]);
        rgpu_mp_str(&w, "filter"); rgpu_mp_uint(&w, (uint64_t)t->filterMode);
        rgpu_mp_str(&w, "flags"); rgpu_mp_uint(&w, t->flags);
        rgpu_mp_str(&w, "border");
        rgpu_mp_array(&w, 4);
        for (int i = 0; i < 4; i++) { uint32_t b; memcpy(&b, &t->borderColor[i], 4); rgpu_mp_uint(&w, b); }
        rgpu_mp_nil(&w);
    }
    if (!rc && w.oom) rc = CUDA_ERROR_OUT_OF_MEMORY;
    if (!rc) rc = add_obj_locked(h, surface, r, t);
    if (!rc) {
        rc = rgpu_rpc_post_locked(surface ? RGPU_OP_SURFOBJ_CREATE : RGPU_OP_TEXOBJ_CREATE, 0, w.buf, (uint32_t)w.len, NULL, 0);
        if (rc) nobjs--;
        else { next_handle++; *out = h; }
    }
    rgpu_rpc_unlock();
    rgpu_mp_free(&w);
    return rc;
}

static CUresult destroy_obj(uint64_t h, int surface)
{
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    rgpu_rpc_lock();
    struct obj *o = obj_of_locked(h, surface);
    if (!o) { rgpu_rpc_unlock(); return CUDA_ERROR_INVALID_VALUE; }
    *o = objs[--nobjs];
    rgpu_texobj_destroy_args a = { h }; /* the same layout as rgpu_surfobj_destroy_args */
    rc = rgpu_rpc_post_locked(surface ? RGPU_OP_SURFOBJ_DESTROY : RGPU_OP_TEXOBJ_DESTROY, 0, &a, sizeof(a), NULL, 0);
    rgpu_rpc_unlock();
    return rc;
}

static CUresult obj_desc(uint64_t h, int surface, CUDA_RESOURCE_DESC *r, CUDA_TEXTURE_DESC *t)
{
    if (!r && !t) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    rgpu_rpc_lock();
    struct obj *o = obj_of_locked(h, surface);
    if (o && r) *r = o->res;
    if (o && t) *t = o->tex;
    rgpu_rpc_unlock();
    return o ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

RGPU_EXPORT CUresult CUDAAPI cuTexObjectCreate(CUtexObject *out, const CUDA_RESOURCE_DESC *r, const CUDA_TEXTURE_DESC *t,
                                               const CUDA_RESOURCE_VIEW_DESC *view)
{
    if (!t) return CUDA_ERROR_INVALID_VALUE;
    uint64_t h = 0;
    CUresult rc = create_obj(&h, r, t, view);
    if (!rc && out) *out = (CUtexObject)h;
    return rc;
}
RGPU_EXPORT CUresult CUDAAPI cuTexObjectDestroy(CUtexObject h) { return destroy_obj(h, 0); }
RGPU_EXPORT CUresult CUDAAPI cuTexObjectGetResourceDesc(CUDA_RESOURCE_DESC *r, CUtexObject h) { return r ? obj_desc(h, 0, r, NULL) : CUDA_ERROR_INVALID_VALUE; }
RGPU_EXPORT CUresult CUDAAPI cuTexObjectGetTextureDesc(CUDA_TEXTURE_DESC *t, CUtexObject h) { return t ? obj_desc(h, 0, NULL, t) : CUDA_ERROR_INVALID_VALUE; }
RGPU_EXPORT CUresult CUDAAPI cuTexObjectGetResourceViewDesc(CUDA_RESOURCE_VIEW_DESC *v, CUtexObject h)
{
    (void)v; (void)h;
    return rgpu_trace_unimplemented("cuTexObjectGetResourceViewDesc (resource views)");
}

RGPU_EXPORT CUresult CUDAAPI cuSurfObjectCreate(CUsurfObject *out, const CUDA_RESOURCE_DESC *r)
{
    if (r && r->resType != CU_RESOURCE_TYPE_ARRAY) return CUDA_ERROR_INVALID_VALUE;
    uint64_t h = 0;
    CUresult rc = create_obj(&h, r, NULL, NULL);
    if (!rc && out) *out = (CUsurfObject)h;
    return rc;
}
RGPU_EXPORT CUresult CUDAAPI cuSurfObjectDestroy(CUsurfObject h) { return destroy_obj(h, 1); }
RGPU_EXPORT CUresult CUDAAPI cuSurfObjectGetResourceDesc(CUDA_RESOURCE_DESC *r, CUsurfObject h) { return r ? obj_desc(h, 1, r, NULL) : CUDA_ERROR_INVALID_VALUE; }

/* ---- refused: mipmapped arrays (the emulated device samples level 0 of plain arrays only) ---- */

RGPU_EXPORT CUresult CUDAAPI cuMipmappedArrayCreate(CUmipmappedArray *h, const CUDA_ARRAY3D_DESCRIPTOR *d, unsigned int levels)
{
    (void)h; (void)d; (void)levels;
    return rgpu_trace_unimplemented("cuMipmappedArrayCreate (mipmapped arrays)");
}
RGPU_EXPORT CUresult CUDAAPI cuMipmappedArrayDestroy(CUmipmappedArray h)
{
    (void)h;
    return rgpu_trace_unimplemented("cuMipmappedArrayDestroy (mipmapped arrays)");
}
RGPU_EXPORT CUresult CUDAAPI cuMipmappedArrayGetLevel(CUarray *out, CUmipmappedArray h, unsigned int level)
{
    (void)out; (void)h; (void)level;
    return rgpu_trace_unimplemented("cuMipmappedArrayGetLevel (mipmapped arrays)");
}

/* A forked child starts a new session: the parent's arrays and objects are not its own. */
void rgpu_array_after_fork(void)
{
    for (size_t i = 0; i < narrays; i++) free(arrays[i]);
    free(arrays);
    free(objs);
    arrays = NULL;
    objs = NULL;
    narrays = cap_arrays = nobjs = cap_objs = 0;
    next_handle = 1;
}
