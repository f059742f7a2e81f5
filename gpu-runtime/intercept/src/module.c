/* cuModule* / cuLibrary* / cuFunc* / cuKernel*: images are serialised here and loaded by the server;
 * kernels, parameter layouts, attributes and globals come back in the MODULE_LOAD reply and every later
 * query is answered locally. A CUlibrary is the same object as its CUmodule, and a CUkernel the same as
 * its CUfunction (cudart 13 passes CUkernel handles to cuLaunchKernel). */
#include "rgpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WRAPPER_MAGIC 0x466243B1u
#define FATBIN_MAGIC 0xBA55ED50u
#define PROBE_MIN (256u * 1024u) /* below this, sending the image costs less than a cache probe round trip */

struct image {
    const uint8_t *data; /* borrowed, or `owned` */
    uint64_t size;
    uint8_t *owned;
    const char *kind;
};

static uint64_t fatbin_size(const uint8_t *p)
{
    uint32_t magic;
    uint64_t files;
    memcpy(&magic, p, 4);
    if (magic != FATBIN_MAGIC) return 0;
    uint16_t hsize;
    memcpy(&hsize, p + 6, 2);
    memcpy(&files, p + 8, 8);
    return (uint64_t)hsize + files;
}

static uint64_t elf_size(const uint8_t *p)
{
    uint64_t shoff, phoff;
    uint16_t phentsize, phnum, shentsize, shnum;
    if (p[4] != 2) return 0; /* ELFCLASS64 only: every cubin nvcc makes today */
    memcpy(&phoff, p + 0x20, 8);
    memcpy(&shoff, p + 0x28, 8);
    memcpy(&phentsize, p + 0x36, 2);
    memcpy(&phnum, p + 0x38, 2);
    memcpy(&shentsize, p + 0x3a, 2);
    memcpy(&shnum, p + 0x3c, 2);
    uint64_t end = shoff + (uint64_t)shentsize * shnum;
    uint64_t pend = phoff + (uint64_t)phentsize * phnum;
    if (pend > end) end = pend;
    /* section contents may follow the header table */
    for (uint16_t i = 0; i < shnum; i++) {
        const uint8_t *sh = p + shoff + (uint64_t)i * shentsize;
        uint32_t type;
        uint64_t off, size;
        memcpy(&type, sh + 4, 4);
        memcpy(&off, sh + 0x18, 8);
        memcpy(&size, sh + 0x20, 8);
        if (type != 8 /* SHT_NOBITS */ && off + size > end) end = off + size;
    }
    return end;
}

/* Works out what `code` points at and how long it is. A v2 wrapper (rdc builds) is sent as its linked
 * fatbin followed by each prelinked fatbin, back to back: each starts with its own header, so the server
 * can walk them. */
static CUresult classify(const void *code, struct image *img)
{
    const uint8_t *p = code;
    uint32_t magic;
    memset(img, 0, sizeof(*img));
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    memcpy(&magic, p, 4);
    if (magic == WRAPPER_MAGIC) {
        int version;
        const uint8_t *fat;
        const uint8_t *const *list;
        memcpy(&version, p + 4, 4);
        memcpy(&fat, p + 8, sizeof(fat));
        memcpy(&list, p + 16, sizeof(list));
        if (!fat || !fatbin_size(fat)) return CUDA_ERROR_INVALID_IMAGE;
        img->kind = "fatbin";
        img->data = fat;
        img->size = fatbin_size(fat);
        if (version == 2 && list && list[0]) {
            uint64_t total = img->size;
            for (size_t i = 0; list[i]; i++) total += fatbin_size(list[i]);
            img->owned = malloc((size_t)total);
            if (!img->owned) return CUDA_ERROR_OUT_OF_MEMORY;
            memcpy(img->owned, fat, (size_t)img->size);
            uint64_t off = img->size;
            for (size_t i = 0; list[i]; i++) {
                uint64_t n = fatbin_size(list[i]);
                memcpy(img->owned + off, list[i], (size_t)n);
                off += n;
            }
            img->data = img->owned;
            img->size = total;
        }
        return CUDA_SUCCESS;
    }
    if (magic == FATBIN_MAGIC) {
        img->kind = "fatbin";
        img->data = p;
        img->size = fatbin_size(p);
        return CUDA_SUCCESS;
    }
    if (memcmp(p, "\177ELF", 4) == 0) {
        img->kind = "cubin";
        img->data = p;
        img->size = elf_size(p);
        return img->size ? CUDA_SUCCESS : CUDA_ERROR_INVALID_IMAGE;
    }
    img->kind = "ptx";
    img->data = p;
    img->size = strlen((const char *)p) + 1;
    return CUDA_SUCCESS;
}

static void free_module(struct rgpu_module *m)
{
    if (!m) return;
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        free(m->funcs[i].name);
        free(m->funcs[i].param_off);
        free(m->funcs[i].param_size);
        m->funcs[i].magic = 0;
    }
    for (uint32_t i = 0; i < m->nglobals; i++) free(m->globals[i].name);
    free(m->funcs);
    free(m->globals);
    m->magic = 0;
    free(m);
}

static char *dup_str(const struct rgpu_mp_value *v)
{
    char *s = malloc(v->n + 1);
    if (!s) return NULL;
    memcpy(s, v->p, v->n);
    s[v->n] = 0;
    return s;
}

static const char *const attr_names[] = { "maxThreadsPerBlock", "sharedSizeBytes", "constSizeBytes", "localSizeBytes",
                                          "numRegs", "ptxVersion", "binaryVersion", NULL, "maxDynamicSharedSizeBytes", NULL };

static int parse_kernel(struct rgpu_mp_reader *r, struct rgpu_module *m, uint32_t index)
{
    struct rgpu_mp_value k, v;
    struct rgpu_func *f = &m->funcs[index];
    if (rgpu_mp_read(r, &k) || k.type != RGPU_MP_MAP) return -1;
    f->magic = RGPU_MAGIC_FUNC;
    f->module = m;
    f->index = index;
    if (rgpu_mp_map_get(&k, "name", &v) || v.type != RGPU_MP_STR || !(f->name = dup_str(&v))) return -1;
    if (rgpu_mp_map_get(&k, "params", &v) == 0 && v.type == RGPU_MP_ARRAY) {
        f->nparams = v.n;
        f->param_off = calloc(v.n + 1, sizeof(uint32_t));
        f->param_size = calloc(v.n + 1, sizeof(uint32_t));
        if (!f->param_off || !f->param_size) return -1;
        struct rgpu_mp_reader pr = { v.p, v.end };
        for (uint32_t i = 0; i < v.n; i++) {
            struct rgpu_mp_value pair, o, s;
            if (rgpu_mp_read(&pr, &pair) || pair.type != RGPU_MP_ARRAY || pair.n < 2) return -1;
            if (rgpu_mp_read(&pr, &o) || rgpu_mp_read(&pr, &s) || o.type != RGPU_MP_INT || s.type != RGPU_MP_INT) return -1;
            /* a layout outside the 32 KiB parameter space would make launches write out of bounds */
            if (o.i < 0 || s.i < 0 || o.i + s.i > 32768) return -1;
            for (uint32_t j = 2; j < pair.n; j++) if (rgpu_mp_skip(&pr)) return -1;
            f->param_off[i] = (uint32_t)o.i;
            f->param_size[i] = (uint32_t)s.i;
            if (o.i + s.i > f->param_total) f->param_total = (uint32_t)(o.i + s.i);
        }
    }
    int64_t x;
    if (rgpu_mp_get_int(&k, "paramSize", &x) == 0 && x >= f->param_total && x <= 32768) f->param_total = (uint32_t)x;
    f->attrs[CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK] = 1024;
    f->attrs[CU_FUNC_ATTRIBUTE_PTX_VERSION] = rgpu_g.cc_major * 10 + rgpu_g.cc_minor;
    f->attrs[CU_FUNC_ATTRIBUTE_BINARY_VERSION] = rgpu_g.cc_major * 10 + rgpu_g.cc_minor;
    f->attrs[CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES] = 48 * 1024;
    if (rgpu_mp_map_get(&k, "attrs", &v) == 0 && v.type == RGPU_MP_MAP)
        for (int a = 0; a < 10; a++)
            if (attr_names[a] && rgpu_mp_get_int(&v, attr_names[a], &x) == 0) f->attrs[a] = (int)x;
    return 0;
}

static int parse_module(const uint8_t *body, uint32_t len, struct rgpu_module *m)
{
    struct rgpu_mp_reader r = { body, body + len };
    struct rgpu_mp_value top, v;
    if (rgpu_mp_read(&r, &top) || top.type != RGPU_MP_MAP) return -1;
    if (rgpu_mp_map_get(&top, "kernels", &v) == 0 && v.type == RGPU_MP_ARRAY && v.n) {
        m->funcs = calloc(v.n, sizeof(*m->funcs));
        if (!m->funcs) return -1;
        m->nfuncs = v.n;
        struct rgpu_mp_reader kr = { v.p, v.end };
        for (uint32_t i = 0; i < v.n; i++) {
            struct rgpu_mp_reader start = kr;
            if (parse_kernel(&start, m, i)) return -1;
            if (rgpu_mp_skip(&kr)) return -1;
        }
    }
    if (rgpu_mp_map_get(&top, "globals", &v) == 0 && v.type == RGPU_MP_ARRAY && v.n) {
        m->globals = calloc(v.n, sizeof(*m->globals));
        if (!m->globals) return -1;
        m->nglobals = v.n;
        struct rgpu_mp_reader gr = { v.p, v.end };
        for (uint32_t i = 0; i < v.n; i++) {
            struct rgpu_mp_value g, s;
            int64_t x;
            struct rgpu_mp_reader start = gr;
            if (rgpu_mp_read(&start, &g) || g.type != RGPU_MP_MAP) return -1;
            if (rgpu_mp_map_get(&g, "name", &s) || s.type != RGPU_MP_STR || !(m->globals[i].name = dup_str(&s))) return -1;
            if (rgpu_mp_get_int(&g, "addr", &x)) return -1;
            m->globals[i].addr = (uint64_t)x;
            if (rgpu_mp_get_int(&g, "size", &x)) return -1;
            m->globals[i].size = (uint64_t)x;
            if (rgpu_mp_skip(&gr)) return -1;
        }
    }
    return 0;
}

static CUresult send_load(uint32_t id, const char *hash, const struct image *img, const char *name, int with_image,
                          uint8_t **reply, uint32_t *rlen)
{
    struct rgpu_mp_writer w;
    rgpu_mp_init(&w);
    rgpu_mp_array(&w, 5);
    rgpu_mp_uint(&w, id);
    rgpu_mp_str(&w, hash);
    rgpu_mp_str(&w, img->kind);
    rgpu_mp_uint(&w, img->size);
    rgpu_mp_str(&w, name);
    if (w.oom) { rgpu_mp_free(&w); return CUDA_ERROR_OUT_OF_MEMORY; }
    CUresult rc = rgpu_rpc_call_locked(RGPU_OP_MODULE_LOAD, 0, w.buf, (uint32_t)w.len, with_image ? img->data : NULL,
                                       with_image ? img->size : 0, reply, rlen, NULL, 0);
    rgpu_mp_free(&w);
    return rc;
}

/* Every loaded module, for rgpu_module_renew_locked (rgpu_g.lock). */
static struct rgpu_module *live;

/* The parent's modules stay allocated in the child (its handles may still be passed in) but are not
 * loaded again into the child's sessions: their ids would collide with the child's own. */
void rgpu_module_after_fork(void) { live = NULL; }

static CUresult load(struct rgpu_module **out, const void *code, const char *name)
{
    if (!out) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rgpu_rpc_ready();
    if (rc) return rc;
    struct image img;
    rc = classify(code, &img);
    if (rc) return rc;
    if (img.size > RGPU_MAX_BULK) { free(img.owned); return CUDA_ERROR_INVALID_VALUE; }
    char hash[65];
    rgpu_sha256_hex(img.data, img.size, hash);
    struct rgpu_module *m = calloc(1, sizeof(*m));
    if (!m) { free(img.owned); return CUDA_ERROR_OUT_OF_MEMORY; }
    m->magic = RGPU_MAGIC_MOD;
    uint8_t *reply = NULL;
    uint32_t rlen = 0;
    rgpu_rpc_lock();
    m->id = rgpu_g.next_module++;
    m->session = rgpu_g.session_gen;
    rc = CUDA_ERROR_FILE_NOT_FOUND;
    if (img.size >= PROBE_MIN) rc = send_load(m->id, hash, &img, name, 0, &reply, &rlen);
    if (rc == CUDA_ERROR_FILE_NOT_FOUND) {
        free(reply);
        reply = NULL;
        rc = send_load(m->id, hash, &img, name, 1, &reply, &rlen);
    }
    if (!rc && parse_module(reply, rlen, m)) {
        rgpu_trace("malformed MODULE_LOAD reply");
        rc = CUDA_ERROR_INVALID_IMAGE;
    }
    for (uint32_t i = 0; !rc && i < m->nglobals; i++) rc = rgpu_memory_add_global_locked(m->globals[i].addr, m->globals[i].size);
    if (!rc) {
        memcpy(m->hash, hash, sizeof(m->hash));
        m->kind = img.kind;
        m->size = img.size;
        m->next_live = live;
        live = m;
    }
    rgpu_rpc_unlock();
    char why[256] = "";
    if (rc && reply) {
        /* an error reply may explain itself in {message} */
        struct rgpu_mp_reader r = { reply, reply + rlen };
        struct rgpu_mp_value top, msg;
        if (rgpu_mp_read(&r, &top) == 0 && rgpu_mp_map_get(&top, "message", &msg) == 0 && msg.type == RGPU_MP_STR)
            snprintf(why, sizeof(why), ": %.*s", (int)msg.n, (const char *)msg.p);
    }
    free(reply);
    free(img.owned);
    if (rc) {
        rgpu_trace("module load (%s, %llu bytes) failed: CUresult %d%s", img.kind, (unsigned long long)img.size, (int)rc, why);
        free_module(m);
        return rc;
    }
    rgpu_trace("module %u loaded (%s, %llu bytes, %u kernels, %u globals)", m->id, img.kind,
               (unsigned long long)img.size, m->nfuncs, m->nglobals);
    *out = m;
    return CUDA_SUCCESS;
}

static void unlist_locked(struct rgpu_module *m)
{
    for (struct rgpu_module **pp = &live; *pp; pp = &(*pp)->next_live)
        if (*pp == m) { *pp = m->next_live; return; }
}

/* After a fault the process gets a new session (rpc.c). A CUlibrary outlives contexts in CUDA, and cudart
 * keeps its libraries across cudaDeviceReset, so each is loaded into the new session under the same id,
 * by hash from the server's shared cache (no image bytes are kept here). Its kernels are the same; only its
 * globals may have moved. A library the cache no longer has stays with the old session (traced). */
void rgpu_module_renew_locked(void)
{
    for (struct rgpu_module *m = live; m; m = m->next_live) {
        if (!m->library) continue;
        struct image img = { NULL, m->size, NULL, m->kind };
        uint8_t *reply = NULL;
        uint32_t rlen = 0;
        struct rgpu_module tmp;
        memset(&tmp, 0, sizeof(tmp));
        CUresult rc = send_load(m->id, m->hash, &img, "", 0, &reply, &rlen);
        if (!rc && (parse_module(reply, rlen, &tmp) || tmp.nglobals != m->nglobals || tmp.nfuncs != m->nfuncs)) rc = CUDA_ERROR_INVALID_IMAGE;
        for (uint32_t i = 0; !rc && i < m->nglobals; i++) {
            m->globals[i].addr = tmp.globals[i].addr;
            rc = rgpu_memory_add_global_locked(m->globals[i].addr, m->globals[i].size);
        }
        if (!rc) m->session = rgpu_g.session_gen;
        else rgpu_trace("library %u not loaded into the new session: CUresult %d", m->id, (int)rc);
        for (uint32_t i = 0; i < tmp.nfuncs; i++) { free(tmp.funcs[i].name); free(tmp.funcs[i].param_off); free(tmp.funcs[i].param_size); }
        for (uint32_t i = 0; i < tmp.nglobals; i++) free(tmp.globals[i].name);
        free(tmp.funcs);
        free(tmp.globals);
        free(reply);
    }
}

static struct rgpu_module *module_of(const void *h)
{
    struct rgpu_module *m = (struct rgpu_module *)h;
    return m && m->magic == RGPU_MAGIC_MOD ? m : NULL;
}

struct rgpu_func *rgpu_module_func_of(void *h)
{
    struct rgpu_func *f = h;
    /* a module of a session replaced after a fault went with it, as a destroyed context's modules do */
    return f && f->magic == RGPU_MAGIC_FUNC && f->module->session == rgpu_g.session_gen ? f : NULL;
}

static CUresult unload(void *h)
{
    struct rgpu_module *m = module_of(h);
    if (!m) return CUDA_ERROR_INVALID_HANDLE;
    rgpu_rpc_lock();
    unlist_locked(m);
    for (uint32_t i = 0; i < m->nglobals; i++) rgpu_memory_remove_global_locked(m->globals[i].addr);
    rgpu_module_unload_args a = { m->id };
    CUresult rc = rgpu_rpc_post_locked(RGPU_OP_MODULE_UNLOAD, 0, &a, sizeof(a), NULL, 0);
    rgpu_rpc_unlock();
    free_module(m);
    return rc == RGPU_ERR_TRANSPORT ? CUDA_SUCCESS : rc; /* unloading after the server left is harmless */
}

static CUresult get_function(struct rgpu_func **out, struct rgpu_module *m, const char *name)
{
    if (!out || !name) return CUDA_ERROR_INVALID_VALUE;
    if (!m) return CUDA_ERROR_INVALID_HANDLE;
    for (uint32_t i = 0; i < m->nfuncs; i++)
        if (strcmp(m->funcs[i].name, name) == 0) { *out = &m->funcs[i]; return CUDA_SUCCESS; }
    return CUDA_ERROR_NOT_FOUND;
}

static CUresult get_global(CUdeviceptr *dptr, size_t *bytes, struct rgpu_module *m, const char *name)
{
    if (!name) return CUDA_ERROR_INVALID_VALUE;
    if (!m) return CUDA_ERROR_INVALID_HANDLE;
    for (uint32_t i = 0; i < m->nglobals; i++)
        if (strcmp(m->globals[i].name, name) == 0) {
            if (dptr) *dptr = m->globals[i].addr;
            if (bytes) *bytes = (size_t)m->globals[i].size;
            return CUDA_SUCCESS;
        }
    return CUDA_ERROR_NOT_FOUND;
}

static void *read_file(const char *path, CUresult *rc)
{
    FILE *f = fopen(path, "rbe");
    if (!f) { *rc = CUDA_ERROR_FILE_NOT_FOUND; return NULL; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); fclose(f); *rc = CUDA_ERROR_FILE_NOT_FOUND; return NULL; }
    buf[n] = 0; /* PTX text files carry no terminator */
    fclose(f);
    *rc = CUDA_SUCCESS;
    return buf;
}

/* ---- cuModule* ---- */

RGPU_EXPORT CUresult CUDAAPI cuModuleLoadData(CUmodule *module, const void *image)
{
    return load((struct rgpu_module **)module, image, "");
}

RGPU_EXPORT CUresult CUDAAPI cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int n, CUjit_option *o, void **v)
{
    return load((struct rgpu_module **)module, image, ""); /* JIT options apply on the server's side; none carried */
}

RGPU_EXPORT CUresult CUDAAPI cuModuleLoadFatBinary(CUmodule *module, const void *fatCubin)
{
    return load((struct rgpu_module **)module, fatCubin, "");
}

RGPU_EXPORT CUresult CUDAAPI cuModuleLoad(CUmodule *module, const char *fname)
{
    if (!fname) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc;
    void *buf = read_file(fname, &rc);
    if (!buf) return rc;
    rc = load((struct rgpu_module **)module, buf, fname);
    free(buf);
    return rc;
}

RGPU_EXPORT CUresult CUDAAPI cuModuleUnload(CUmodule hmod) { return unload(hmod); }

RGPU_EXPORT CUresult CUDAAPI cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
{
    return get_function((struct rgpu_func **)hfunc, module_of(hmod), name);
}

RGPU_EXPORT CUresult CUDAAPI cuModuleGetGlobal_v2(CUdeviceptr *dptr, size_t *bytes, CUmodule hmod, const char *name)
{
    return get_global(dptr, bytes, module_of(hmod), name);
}

RGPU_EXPORT CUresult CUDAAPI cuModuleGetFunctionCount(unsigned int *count, CUmodule mod)
{
    struct rgpu_module *m = module_of(mod);
    if (!count) return CUDA_ERROR_INVALID_VALUE;
    if (!m) return CUDA_ERROR_INVALID_HANDLE;
    *count = m->nfuncs;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuModuleEnumerateFunctions(CUfunction *functions, unsigned int num, CUmodule mod)
{
    struct rgpu_module *m = module_of(mod);
    if (!functions) return CUDA_ERROR_INVALID_VALUE;
    if (!m) return CUDA_ERROR_INVALID_HANDLE;
    for (unsigned i = 0; i < num && i < m->nfuncs; i++) functions[i] = (CUfunction)&m->funcs[i];
    return CUDA_SUCCESS;
}

/* ---- cuLibrary* ---- */

RGPU_EXPORT CUresult CUDAAPI cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jo, void **jv, unsigned int nj,
                                               CUlibraryOption *lo, void **lv, unsigned int nl)
{
    CUresult rc = load((struct rgpu_module **)library, code, "");
    if (!rc) ((struct rgpu_module *)*library)->library = 1;
    return rc;
}

RGPU_EXPORT CUresult CUDAAPI cuLibraryLoadFromFile(CUlibrary *library, const char *fileName, CUjit_option *jo, void **jv,
                                                   unsigned int nj, CUlibraryOption *lo, void **lv, unsigned int nl)
{
    CUresult rc = cuModuleLoad((CUmodule *)library, fileName);
    if (!rc) ((struct rgpu_module *)*library)->library = 1;
    return rc;
}

RGPU_EXPORT CUresult CUDAAPI cuLibraryUnload(CUlibrary library) { return unload(library); }

RGPU_EXPORT CUresult CUDAAPI cuLibraryGetKernel(CUkernel *pKernel, CUlibrary library, const char *name)
{
    return get_function((struct rgpu_func **)pKernel, module_of(library), name);
}

RGPU_EXPORT CUresult CUDAAPI cuLibraryGetModule(CUmodule *pMod, CUlibrary library)
{
    if (!pMod) return CUDA_ERROR_INVALID_VALUE;
    if (!module_of(library)) return CUDA_ERROR_INVALID_HANDLE;
    *pMod = (CUmodule)library;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary library, const char *name)
{
    return get_global(dptr, bytes, module_of(library), name);
}

RGPU_EXPORT CUresult CUDAAPI cuLibraryGetKernelCount(unsigned int *count, CUlibrary lib)
{
    return cuModuleGetFunctionCount(count, (CUmodule)lib);
}

RGPU_EXPORT CUresult CUDAAPI cuLibraryEnumerateKernels(CUkernel *kernels, unsigned int num, CUlibrary lib)
{
    return cuModuleEnumerateFunctions((CUfunction *)kernels, num, (CUmodule)lib);
}

RGPU_EXPORT CUresult CUDAAPI cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel)
{
    if (!pFunc) return CUDA_ERROR_INVALID_VALUE;
    if (!rgpu_module_func_of(kernel)) return CUDA_ERROR_INVALID_HANDLE;
    *pFunc = (CUfunction)kernel;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuKernelGetLibrary(CUlibrary *pLib, CUkernel kernel)
{
    struct rgpu_func *f = rgpu_module_func_of(kernel);
    if (!pLib) return CUDA_ERROR_INVALID_VALUE;
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    *pLib = (CUlibrary)f->module;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuFuncGetModule(CUmodule *hmod, CUfunction hfunc)
{
    return cuKernelGetLibrary((CUlibrary *)hmod, (CUkernel)hfunc);
}

RGPU_EXPORT CUresult CUDAAPI cuFuncGetName(const char **name, CUfunction hfunc)
{
    struct rgpu_func *f = rgpu_module_func_of(hfunc);
    if (!name) return CUDA_ERROR_INVALID_VALUE;
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    *name = f->name;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuKernelGetName(const char **name, CUkernel k) { return cuFuncGetName(name, (CUfunction)k); }

RGPU_EXPORT CUresult CUDAAPI cuFuncIsLoaded(CUfunctionLoadingState *state, CUfunction f)
{
    if (!state) return CUDA_ERROR_INVALID_VALUE;
    if (!rgpu_module_func_of(f)) return CUDA_ERROR_INVALID_HANDLE;
    *state = CU_FUNCTION_LOADING_STATE_LOADED;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuFuncLoad(CUfunction f) { return rgpu_module_func_of(f) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE; }

/* ---- attributes and parameter info (local) ---- */

RGPU_EXPORT CUresult CUDAAPI cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc)
{
    struct rgpu_func *f = rgpu_module_func_of(hfunc);
    if (!pi) return CUDA_ERROR_INVALID_VALUE;
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    if ((int)attrib < 0 || attrib >= CU_FUNC_ATTRIBUTE_MAX) return CUDA_ERROR_INVALID_VALUE;
    *pi = (int)attrib < 10 ? f->attrs[attrib] : 0;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuKernelGetAttribute(int *pi, CUfunction_attribute attrib, CUkernel kernel, CUdevice dev)
{
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    return cuFuncGetAttribute(pi, attrib, (CUfunction)kernel);
}

RGPU_EXPORT CUresult CUDAAPI cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value)
{
    struct rgpu_func *f = rgpu_module_func_of(hfunc);
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    if (attrib != CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES && attrib != CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT &&
        attrib < CU_FUNC_ATTRIBUTE_CLUSTER_SIZE_MUST_BE_SET)
        return CUDA_ERROR_INVALID_VALUE; /* the rest are read-only */
    if (attrib == CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES) {
        int optin = rgpu_g.attrs[CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN];
        if (value < 0 || (optin > 0 && value + f->attrs[CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES] > optin)) return CUDA_ERROR_INVALID_VALUE;
    }
    if ((int)attrib < 10) f->attrs[attrib] = value;
    rgpu_rpc_lock();
    rgpu_func_set_attr_args a = { f->module->id, f->index, (uint32_t)attrib, value };
    CUresult rc = rgpu_rpc_post_locked(RGPU_OP_FUNC_SET_ATTR, 0, &a, sizeof(a), NULL, 0);
    rgpu_rpc_unlock();
    return rc;
}

RGPU_EXPORT CUresult CUDAAPI cuKernelSetAttribute(CUfunction_attribute attrib, int val, CUkernel kernel, CUdevice dev)
{
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    return cuFuncSetAttribute((CUfunction)kernel, attrib, val);
}

RGPU_EXPORT CUresult CUDAAPI cuFuncSetCacheConfig(CUfunction hfunc, CUfunc_cache config)
{
    return rgpu_module_func_of(hfunc) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

RGPU_EXPORT CUresult CUDAAPI cuKernelSetCacheConfig(CUkernel kernel, CUfunc_cache config, CUdevice dev)
{
    return rgpu_module_func_of(kernel) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

RGPU_EXPORT CUresult CUDAAPI cuFuncSetSharedMemConfig(CUfunction hfunc, CUsharedconfig config)
{
    return rgpu_module_func_of(hfunc) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

RGPU_EXPORT CUresult CUDAAPI cuFuncGetParamInfo(CUfunction func, size_t index, size_t *off, size_t *size)
{
    struct rgpu_func *f = rgpu_module_func_of(func);
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    if (index >= f->nparams) return CUDA_ERROR_INVALID_VALUE;
    if (off) *off = f->param_off[index];
    if (size) *size = f->param_size[index];
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuKernelGetParamInfo(CUkernel kernel, size_t index, size_t *off, size_t *size)
{
    return cuFuncGetParamInfo((CUfunction)kernel, index, off, size);
}
