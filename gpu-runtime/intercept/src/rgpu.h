/* Internal interfaces of the intercepting libcuda.so.1. One struct rgpu_state owns everything
 * process-wide; the current context lives only in context.c (thread-local). */
#ifndef RGPU_H
#define RGPU_H

#define __CUDA_API_VERSION_INTERNAL 1 /* declares the legacy ABI names (cuCtxGetDevice v1, ...) */
#include <cuda.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../../protocol/generated/rgpu_ops.h"

#define RGPU_EXPORT __attribute__((visibility("default")))

/* Transport loss and "server went away" map to this one code for every later call (documented in
 * gpu-runtime/intercept/README.md). A failed first connection at cuInit answers CUDA_ERROR_NO_DEVICE. */
#define RGPU_ERR_TRANSPORT CUDA_ERROR_DEVICE_UNAVAILABLE

#define RGPU_WBUF_CAP (256u * 1024u) /* no-reply frames are batched up to this size */
#define RGPU_BULK_DIRECT (64u * 1024u) /* bulk larger than this goes out with writev, uncopied */
#define RGPU_MAX_BULK (RGPU_MAX_FRAME - 64u)
/* Copies at least this large use the data lane when there is one. Measured through the proxy, relay against
 * lane, medians of 5 (node out/bench/src/copySweep.js): reads are as fast or faster on the lane from 4 KiB up
 * (0.20 -> 0.24 GB/s at 4 KiB, 1.06 -> 1.15 at 64 KiB, 1.6 -> 2.8 at 512 KiB); writes only from 256 KiB up
 * (1.5 -> 2.0 GB/s), below which inline is faster (64 KiB: 1.37 against 1.17): a lane write waits for its
 * frame to cross the proxy. */
#define RGPU_LANE_MIN_HTOD (256u * 1024u)
#define RGPU_LANE_MIN_DTOH (4u * 1024u)
#define RGPU_NATTRS 160

/* ---- objects behind opaque CUDA handles ---- */
#define RGPU_MAGIC_CTX 0x43545831u
#define RGPU_MAGIC_FUNC 0x46554e31u
#define RGPU_MAGIC_MOD 0x4d4f4431u
#define RGPU_MAGIC_STREAM 0x53545231u
#define RGPU_MAGIC_EVENT 0x45564e31u

struct rgpu_ctx {
    uint32_t magic;
    int device;
    int primary;      /* the device's primary context (static, never freed) */
    int refcount;     /* primary: retain count; created: 1 until destroyed */
    unsigned flags;
    size_t limits[8]; /* CUlimit values as reported by cuCtxGetLimit */
    uint32_t session;  /* rgpu_g.session_gen it was made in: an older one shares a faulted session */
};

struct rgpu_func {
    uint32_t magic;
    struct rgpu_module *module;
    uint32_t index;       /* index into the MODULE_LOAD reply's kernels list */
    char *name;
    uint32_t nparams;
    uint32_t *param_off;
    uint32_t *param_size;
    uint32_t param_total;
    int attrs[10];        /* CUfunction_attribute 0..9 */
    int max_dyn_shared;
};

struct rgpu_global {
    char *name;
    uint64_t addr;
    uint64_t size;
};

struct rgpu_module {
    uint32_t magic;
    uint32_t id;
    uint32_t session;     /* rgpu_g.session_gen it is loaded in: a module goes with its session, a library is
                           * loaded again into the next one (context-independent, as in CUDA) */
    int library;
    char hash[65];        /* to load it again by hash from the server's cache */
    const char *kind;
    uint64_t size;
    struct rgpu_module *next_live;
    uint32_t nfuncs;
    struct rgpu_func *funcs;
    uint32_t nglobals;
    struct rgpu_global *globals;
};

struct rgpu_stream {
    uint32_t magic;
    uint32_t id;
    unsigned flags;
    int priority;
};

struct rgpu_event {
    uint32_t magic;
    uint32_t id;
    unsigned flags;
};

enum rgpu_alloc_kind {
    RGPU_ALLOC_PLAIN,  /* cuMemAlloc* */
    RGPU_ALLOC_GLOBAL, /* a module's __device__/__constant__ variable: addressable, never freed by cuMemFree */
    RGPU_ALLOC_MAPPED, /* a cuMemCreate handle mapped by cuMemMap (owner: its handle) */
    RGPU_ALLOC_PARKED, /* an unmapped handle's memory, kept where it was: occupies va, not addressable */
};

struct rgpu_alloc {
    uint64_t addr;
    uint64_t size;
    int kind;     /* enum rgpu_alloc_kind */
    void *owner;  /* MAPPED/PARKED: the vmm handle */
};

struct rgpu_range { uint64_t addr, size; };

struct rgpu_host_alloc {
    void *ptr;
    size_t size;
    unsigned flags;
};

struct rgpu_pending_dtoh {
    uint32_t seq;
    void *dst;
    uint64_t size;
    uint64_t width, height, dpitch; /* 2D: rows of width bytes, dpitch apart in dst; height 0 = 1D */
};

struct rgpu_state {
    pthread_mutex_t lock;      /* guards everything below (connection, allocator, handle counters) */
    int init_state;            /* 0 = not initialised, 1 = connected, -1 = failed */
    CUresult init_error;
    int fd;
    pid_t pid;
    /* The data lane (LANE_ATTACH): a direct TCP connection to the server for the payloads of large copies,
     * offered when we reach the server through a kernel-proxy. Attached at the first large copy. */
    int lane_fd;
    int lane_state;            /* 0 = not tried, 1 = attached, -1 = none (not offered, or attaching failed) */
    char lane_host[256], lane_port[16], lane_ticket[80];
    uint32_t seq;
    CUresult lost;             /* non-zero once the transport is gone */
    CUresult sticky;           /* a device fault: every later call of the session fails with it */
    uint32_t session_gen;      /* sessions replaced after a fault (rgpu_rpc_renew); 0 until the first */
    CUresult stale_error;      /* the fault that ended the previous session: contexts of it keep failing */

    uint8_t *wbuf;             /* batched outgoing frames */
    size_t wlen;

    /* device info from HELLO (answered locally) */
    char name[256];
    uint64_t total_mem;
    uint8_t uuid[16];
    int attrs[RGPU_NATTRS];
    int driver_version;
    int cc_major, cc_minor;
    int pci_domain, pci_bus, pci_device;
    char session[64];
    uint64_t va_base, va_size, quota_mem;

    /* device allocations, sorted by address */
    struct rgpu_alloc *allocs;
    size_t nallocs, cap_allocs;
    uint64_t mem_used;

    /* cuMemAddressReserve ranges, sorted by address; the allocator keeps out of them */
    struct rgpu_range *reserves;
    size_t nreserves, cap_reserves;
    uint32_t vmm_gen;          /* bumped when a reset or fork invalidates every vmm handle */

    int ncaptures;             /* active stream captures (graph.c); 0 keeps the hot paths free of lookups */
    int ngates;                /* host functions not yet run (hostfn.c); 0 keeps the hot paths free of lookups */

    struct rgpu_host_alloc *hallocs;
    size_t nhallocs, cap_hallocs;

    struct rgpu_pending_dtoh *pending;
    size_t npending, cap_pending;

    uint32_t next_stream, next_event, next_module;
};

extern struct rgpu_state rgpu_g;

/* trace.c */
int rgpu_trace_on(void);
void rgpu_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
CUresult rgpu_trace_unimplemented(const char *name);

/* rpc.c: all calls below take rgpu_g.lock themselves unless named _locked */
CUresult rgpu_rpc_ensure(void);               /* connect + HELLO once (cuInit) */
CUresult rgpu_rpc_ready(void);                /* init done and transport alive */
void rgpu_rpc_lock(void);
void rgpu_rpc_unlock(void);
CUresult rgpu_rpc_post_locked(uint16_t op, uint32_t stream, const void *body, uint32_t body_len,
                              const void *bulk, uint64_t bulk_len);
/* Sends a request and waits for its reply. reply_body (malloc'd, caller frees) may be NULL to discard;
 * reply bulk goes straight into bulk_dst (up to bulk_cap bytes). */
CUresult rgpu_rpc_call_locked(uint16_t op, uint32_t stream, const void *body, uint32_t body_len,
                              const void *bulk, uint64_t bulk_len, uint8_t **reply_body,
                              uint32_t *reply_len, void *bulk_dst, uint64_t bulk_cap);
/* Sends a request expecting a bulk reply later (async DtoH); the reply is consumed at the next wait. */
CUresult rgpu_rpc_post_dtoh_locked(uint16_t op, uint32_t stream, const void *body, uint32_t body_len,
                                   void *dst, uint64_t size, uint64_t width, uint64_t height, uint64_t dpitch);
CUresult rgpu_rpc_flush_locked(void);
/* 1 when a copy of `len` bytes (to the device, or from it) should travel on the data lane, attaching it at
 * the first such copy. */
int rgpu_rpc_use_lane_locked(uint64_t len, int to_device);
/* MEMCPY_HTOD_LANE / MEMCPY_HTOD_2D_LANE (op): the request on the session connection, its len bytes on the lane. */
CUresult rgpu_rpc_post_lane_locked(uint16_t op, uint32_t stream, const void *body, uint32_t body_len, const void *src,
                                   uint64_t len);
/* An error a helper consumed on the program's behalf: the next reply any thread waits for carries it. */
void rgpu_rpc_defer_error(CUresult rc);
/* Replaces a faulted session with a fresh one (new connection, HELLO, empty allocation table): a context
 * created after a fault works, as with the real driver, while the contexts of the old session keep failing
 * with its fault. */
CUresult rgpu_rpc_renew(void);
void rgpu_rpc_goodbye(void);
void rgpu_rpc_after_fork_child(void);

/* msgpack.c */
struct rgpu_mp_writer { uint8_t *buf; size_t len, cap; int oom; };
void rgpu_mp_init(struct rgpu_mp_writer *w);
void rgpu_mp_free(struct rgpu_mp_writer *w);
void rgpu_mp_array(struct rgpu_mp_writer *w, uint32_t n);
void rgpu_mp_map(struct rgpu_mp_writer *w, uint32_t n);
void rgpu_mp_uint(struct rgpu_mp_writer *w, uint64_t v);
void rgpu_mp_int(struct rgpu_mp_writer *w, int64_t v);
void rgpu_mp_str(struct rgpu_mp_writer *w, const char *s);
void rgpu_mp_nil(struct rgpu_mp_writer *w);

enum rgpu_mp_type { RGPU_MP_NIL, RGPU_MP_BOOL, RGPU_MP_INT, RGPU_MP_FLOAT, RGPU_MP_STR, RGPU_MP_BIN,
                    RGPU_MP_ARRAY, RGPU_MP_MAP, RGPU_MP_EXT, RGPU_MP_ERR };
struct rgpu_mp_value {
    enum rgpu_mp_type type;
    int64_t i;              /* INT (uint64 above INT64_MAX is stored as its bit pattern), BOOL */
    double f;
    const uint8_t *p;       /* STR/BIN: bytes; ARRAY/MAP: first element */
    uint32_t n;             /* STR/BIN length; ARRAY/MAP count */
    const uint8_t *end;     /* end of the enclosing buffer (for reading children) */
};
struct rgpu_mp_reader { const uint8_t *p, *end; };
/* Reads one value header at r (containers are not descended: use rgpu_mp_skip or read children). */
int rgpu_mp_read(struct rgpu_mp_reader *r, struct rgpu_mp_value *v);
int rgpu_mp_skip(struct rgpu_mp_reader *r);
/* Looks up key in the map whose header was just read into `map` (reader positioned after it). On success
 * leaves *out's reader positioned at the value. */
int rgpu_mp_map_find(const struct rgpu_mp_value *map, const char *key, struct rgpu_mp_reader *out);
/* Finds key and reads its value header into *v (containers: children follow at v->p). */
int rgpu_mp_map_get(const struct rgpu_mp_value *map, const char *key, struct rgpu_mp_value *v);
int rgpu_mp_get_int(const struct rgpu_mp_value *map, const char *key, int64_t *out);

/* sha256.c: lowercase hex digest into out[65] */
void rgpu_sha256_hex(const uint8_t *p, uint64_t n, char out[65]);

/* md2.c */
void rgpu_md2_hmac(const uint8_t key[16], const uint8_t *msg, size_t len, uint8_t out[16]);

/* context.c */
struct rgpu_ctx *rgpu_context_current(void);
struct rgpu_ctx *rgpu_context_primary(int dev);
CUresult rgpu_context_check(void);  /* CUDA_ERROR_INVALID_CONTEXT when no current context */
CUresult rgpu_context_stale(void);  /* the old fault when the current context belongs to a replaced session */
void rgpu_context_after_fork(void);

/* memory.c */
int rgpu_memory_is_device(uint64_t addr, uint64_t len); /* range inside one allocation (caller locks) */
struct rgpu_alloc *rgpu_memory_find_locked(uint64_t addr); /* the entry containing addr, parked ones too */
/* First fit of size bytes at `align` in the va window, clear of allocations and reservations (if
 * avoid_reserves) and of anything at all. */
CUresult rgpu_memory_gap_locked(uint64_t size, uint64_t align, int avoid_reserves, uint64_t *out);
int rgpu_memory_range_free_locked(uint64_t addr, uint64_t size, int avoid_reserves);
CUresult rgpu_memory_insert_locked(uint64_t addr, uint64_t size, int kind, void *owner);
void rgpu_memory_remove_locked(uint64_t addr);
/* Stream-ordered copies for graph replay (take the lock themselves; the host side is read/written when
 * the copy runs, as in a captured memcpy node). */
CUresult rgpu_memory_htod(uint64_t dst, const void *src, uint64_t n, uint32_t stream);
CUresult rgpu_memory_dtoh_async(void *dst, uint64_t src, uint64_t n, uint32_t stream);
CUresult rgpu_memory_check_range_locked(uint64_t addr, uint64_t len);
void rgpu_memory_reset(void);
void rgpu_memory_free_all_locked(void); /* cudaDeviceReset: every allocation goes */
CUresult rgpu_memory_add_global_locked(uint64_t addr, uint64_t size);
void rgpu_memory_remove_global_locked(uint64_t addr);

/* stream.c */
uint32_t rgpu_stream_id(CUstream s, int ptds);
struct rgpu_event *rgpu_event_of(CUevent e);

/* vmm.c */
void rgpu_vmm_reset_locked(void); /* every reservation goes and every handle goes stale */

/* graph.c: stream capture. The hooks are called with rgpu_g.lock held and only when rgpu_g.ncaptures. */
struct rgpu_capture;
struct rgpu_capture *rgpu_graph_capture_of_locked(uint32_t stream);
/* A no-reply frame on a capturing stream (or a wait that joins one): recorded instead of sent. Returns 1
 * when it took the frame (*rc says how it went), 0 to send it. */
int rgpu_graph_post_hook_locked(uint16_t op, uint32_t stream, const void *body, uint32_t body_len,
                                const void *bulk, uint64_t bulk_len, CUresult *rc);
/* An event record or wait with the _EXTERNAL flag on a capturing stream: a node (returns 1), not a dependency. */
int rgpu_graph_record_external_locked(uint16_t op, uint32_t stream, const void *body, uint32_t body_len, CUresult *rc);
CUresult rgpu_graph_record_htod_locked(struct rgpu_capture *c, uint64_t dst, const void *src, uint64_t n);
CUresult rgpu_graph_record_dtoh_locked(struct rgpu_capture *c, void *dst, uint64_t src, uint64_t n);
CUresult rgpu_graph_record_hostfn_locked(struct rgpu_capture *c, CUstream s, CUhostFn fn, CUstreamCallback cb, void *data);
CUresult rgpu_graph_invalidate_locked(struct rgpu_capture *c, const char *why); /* returns STREAM_CAPTURE_UNSUPPORTED */
void rgpu_graph_after_fork(void);

/* hostfn.c: host functions run on a helper thread once their stream reaches them */
CUresult rgpu_hostfn_enqueue(CUstream s, uint32_t stream, CUhostFn fn, CUstreamCallback cb, void *data);
/* Called with rgpu_g.lock before a stream-ordered frame is sent: waits (lock released) while a host function
 * queued earlier on that stream has not run. */
void rgpu_hostfn_gate_locked(uint16_t op, uint32_t stream);
int rgpu_hostfn_pending_locked(uint32_t stream); /* host functions queued on the stream and not yet run */
void rgpu_hostfn_shutdown(void);
void rgpu_hostfn_after_fork(void);

/* array.c: a 2D copy with CUDA array ends as the same copy on device memory (array layout: ops.yaml) */
CUresult rgpu_array_flatten2d(const CUDA_MEMCPY2D *c, CUDA_MEMCPY2D *out);
void rgpu_array_after_fork(void);
extern int rgpu_array_textures; /* HELLO features.textures: the device runs texture/surface objects */

/* module.c */
struct rgpu_func *rgpu_module_func_of(void *handle); /* CUfunction or CUkernel */
void rgpu_module_renew_locked(void); /* a new session: libraries are loaded into it again */
void rgpu_module_after_fork(void);

/* getproc.c / generated procs.c */
struct rgpu_proc { const char *name; void *fn; };
extern const struct rgpu_proc rgpu_procs_impl[];
extern const size_t rgpu_procs_impl_count;
struct rgpu_proc_version { const char *name; int version; const char *sym; const char *sym_ptds; };
extern const struct rgpu_proc_version rgpu_procs_versions[];
extern const size_t rgpu_procs_versions_count;

/* errors (generated) */
struct rgpu_error_name { int code; const char *name; const char *text; };
extern const struct rgpu_error_name rgpu_error_names[];
extern const size_t rgpu_error_names_count;

/* dark_api.c */
void *rgpu_dark_cudart_table(void);

#endif
