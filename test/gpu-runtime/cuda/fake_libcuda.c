/* A fake libcuda for the CUDA backend's unit tests (no GPU on the build machines).
 *
 * "Device memory" is host memory: cuMemAddressReserve mmaps the window, so device addresses are host addresses
 * and copies, memsets and the one kernel it knows (vadd) really move bytes. Every call is appended to a text
 * log (fake_log) so tests can check the backend's call sequences; fake_set() injects failures and delays.
 * Built by the test with: gcc -shared -fPIC -O1 -o libfakecuda.so fake_libcuda.c
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

typedef int CUresult;
typedef unsigned long long u64;

static char g_log[1 << 16];
static size_t g_log_len;
static u64 g_next_handle = 0x1000;
static int g_sync_rc, g_launch_rc, g_reserve_base_set;
/* The "GPU" is busy until this CLOCK_MONOTONIC time (ns): events are pending until then. */
static long long g_busy_until;
static int g_concurrent_sync, g_max_concurrent_sync;
static u64 g_reserve_base;
static float g_scale[1] = {2.0f};

static void logf_(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (g_log_len < sizeof g_log - 256) {
    int n = vsnprintf(g_log + g_log_len, sizeof g_log - g_log_len, fmt, ap);
    if (n > 0) g_log_len += (size_t)n;
    g_log[g_log_len++] = '\n';
    g_log[g_log_len] = 0;
  }
  va_end(ap);
}

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

const char *fake_log(void) { return g_log; }
int fake_max_concurrent_sync(void) { return __atomic_load_n(&g_max_concurrent_sync, __ATOMIC_SEQ_CST); }
void fake_reset(void) { g_log_len = 0; g_log[0] = 0; }
void fake_set(const char *key, int value) {
  if (!strcmp(key, "sync_rc")) g_sync_rc = value;
  else if (!strcmp(key, "busy_ms")) { g_busy_until = now_ns() + value * 1000000LL; g_max_concurrent_sync = 0; }
  else if (!strcmp(key, "launch_rc")) g_launch_rc = value;
}

CUresult cuInit(unsigned flags) { logf_("cuInit %u", flags); return 0; }
CUresult cuDriverGetVersion(int *v) { *v = 13000; return 0; }
CUresult cuDeviceGetCount(int *n) { *n = 1; return 0; }
CUresult cuDeviceGet(int *d, int ordinal) { if (ordinal != 0) return 101; *d = 0; return 0; }
CUresult cuDeviceGetName(char *name, int len, int dev) { (void)dev; snprintf(name, (size_t)len, "Tesla T4"); return 0; }
CUresult cuDeviceTotalMem_v2(size_t *bytes, int dev) { (void)dev; *bytes = 15828320256ull; return 0; }
CUresult cuDeviceGetUuid_v2(unsigned char *uuid, int dev) { (void)dev; for (int i = 0; i < 16; i++) uuid[i] = (unsigned char)(0xa0 + i); return 0; }
CUresult cuDeviceGetAttribute(int *v, int attr, int dev) {
  (void)dev;
  if (attr < 1 || attr > 147) return 1;
  switch (attr) {
    case 75: *v = 7; break;
    case 76: *v = 5; break;
    case 33: *v = 0x17; break;
    case 50: case 34: *v = 0; break;
    default: *v = attr * 10;
  }
  return 0;
}
CUresult cuGetErrorName(int code, const char **s) {
  switch (code) {
    case 0: *s = "CUDA_SUCCESS"; return 0;
    case 1: *s = "CUDA_ERROR_INVALID_VALUE"; return 0;
    case 700: *s = "CUDA_ERROR_ILLEGAL_ADDRESS"; return 0;
    case 701: *s = "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"; return 0;
    default: *s = NULL; return 1;
  }
}

CUresult cuCtxCreate_v2(u64 *ctx, unsigned flags, int dev) { *ctx = g_next_handle++; logf_("cuCtxCreate flags=%u dev=%d -> ctx", flags, dev); return 0; }
CUresult cuCtxDestroy_v2(u64 ctx) { (void)ctx; logf_("cuCtxDestroy"); return 0; }
CUresult cuCtxSetCurrent(u64 ctx) { (void)ctx; logf_("cuCtxSetCurrent"); return 0; }

/* --- virtual memory: the window is real host memory --------------------------------------------- */
#define GRANULE (2u << 20)
CUresult cuMemGetAllocationGranularity(size_t *g, const void *prop, int option) {
  const uint32_t *p = prop;
  logf_("cuMemGetAllocationGranularity type=%u loc=%u id=%d option=%d", p[0], p[2], (int)p[3], option);
  *g = GRANULE;
  return 0;
}
CUresult cuMemAddressReserve(u64 *ptr, size_t size, size_t align, u64 addr, u64 flags) {
  (void)addr; (void)flags;
  size_t a = align ? align : GRANULE;
  char *m = mmap(NULL, size + a, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return 2;
  u64 base = ((u64)(uintptr_t)m + a - 1) / a * a;
  *ptr = base;
  g_reserve_base = base;
  g_reserve_base_set = 1;
  logf_("cuMemAddressReserve size=%zu align=%zu", size, align);
  return 0;
}
CUresult cuMemAddressFree(u64 ptr, size_t size) { logf_("cuMemAddressFree off=%llu size=%zu", ptr - g_reserve_base, size); return 0; }
CUresult cuMemCreate(u64 *h, size_t size, const void *prop, u64 flags) { (void)prop; (void)flags; *h = g_next_handle++; logf_("cuMemCreate size=%zu", size); return 0; }
CUresult cuMemRelease(u64 h) { (void)h; logf_("cuMemRelease"); return 0; }
CUresult cuMemMap(u64 ptr, size_t size, size_t off, u64 h, u64 flags) { (void)off; (void)h; (void)flags; logf_("cuMemMap off=%llu size=%zu", ptr - g_reserve_base, size); return 0; }
CUresult cuMemUnmap(u64 ptr, size_t size) { logf_("cuMemUnmap off=%llu size=%zu", ptr - g_reserve_base, size); return 0; }
CUresult cuMemSetAccess(u64 ptr, size_t size, const void *desc, size_t count) {
  const uint32_t *d = desc;
  logf_("cuMemSetAccess off=%llu size=%zu loc=%u flags=%u count=%zu", ptr - g_reserve_base, size, d[0], d[2], count);
  return 0;
}
CUresult cuMemHostAlloc(void **pp, size_t size, unsigned flags) { (void)flags; *pp = calloc(1, size); return *pp ? 0 : 2; }
CUresult cuMemFreeHost(void *p) { free(p); return 0; }

/* --- copies and memsets: device addresses are host addresses ------------------------------------- */
CUresult cuMemcpyHtoDAsync_v2(u64 dst, u64 src, size_t n, u64 s) { (void)s; memcpy((void *)(uintptr_t)dst, (void *)(uintptr_t)src, n); logf_("HtoD %zu", n); return 0; }
CUresult cuMemcpyDtoHAsync_v2(u64 dst, u64 src, size_t n, u64 s) { (void)s; memcpy((void *)(uintptr_t)dst, (void *)(uintptr_t)src, n); logf_("DtoH %zu", n); return 0; }
CUresult cuMemcpyDtoDAsync_v2(u64 dst, u64 src, size_t n, u64 s) { (void)s; memmove((void *)(uintptr_t)dst, (void *)(uintptr_t)src, n); logf_("DtoD %zu", n); return 0; }
CUresult cuMemcpy2DAsync_v2(const void *desc, u64 s) {
  (void)s;
  const unsigned char *d = desc;
  u64 srcHost, srcDev, srcPitch, dstHost, dstDev, dstPitch, w, h;
  uint32_t st, dt;
  memcpy(&st, d + 16, 4); memcpy(&srcHost, d + 24, 8); memcpy(&srcDev, d + 32, 8); memcpy(&srcPitch, d + 48, 8);
  memcpy(&dt, d + 72, 4); memcpy(&dstHost, d + 80, 8); memcpy(&dstDev, d + 88, 8); memcpy(&dstPitch, d + 104, 8);
  memcpy(&w, d + 112, 8); memcpy(&h, d + 120, 8);
  char *src = (char *)(uintptr_t)(st == 1 ? srcHost : srcDev);
  char *dst = (char *)(uintptr_t)(dt == 1 ? dstHost : dstDev);
  for (u64 r = 0; r < h; r++) memcpy(dst + r * dstPitch, src + r * srcPitch, w);
  logf_("Memcpy2D src=%u dst=%u w=%llu h=%llu spitch=%llu dpitch=%llu", st, dt, w, h, srcPitch, dstPitch);
  return 0;
}
#define MEMSET(name, T)                                                                       \
  CUresult name(u64 dst, T v, size_t n, u64 s) {                                              \
    (void)s; T *p = (T *)(uintptr_t)dst; for (size_t i = 0; i < n; i++) p[i] = v;             \
    logf_(#name " n=%zu", n); return 0;                                                       \
  }
MEMSET(cuMemsetD8Async, uint8_t)
MEMSET(cuMemsetD16Async, uint16_t)
MEMSET(cuMemsetD32Async, uint32_t)
#define MEMSET2D(name, T)                                                                     \
  CUresult name(u64 dst, size_t pitch, T v, size_t w, size_t h, u64 s) {                      \
    (void)s;                                                                                  \
    for (size_t r = 0; r < h; r++) { T *p = (T *)(uintptr_t)(dst + r * pitch); for (size_t i = 0; i < w; i++) p[i] = v; } \
    logf_(#name " w=%zu h=%zu pitch=%zu", w, h, pitch); return 0;                             \
  }
MEMSET2D(cuMemsetD2D8Async, uint8_t)
MEMSET2D(cuMemsetD2D16Async, uint16_t)
MEMSET2D(cuMemsetD2D32Async, uint32_t)

/* --- modules: every image holds vadd(float*, float*, float*, int) and noargs() -------------------- */
#define F_VADD 0xF1ull
#define F_NOARGS 0xF2ull
CUresult cuModuleLoadData(u64 *mod, const void *image) {
  const unsigned char *b = image;
  uint32_t magic;
  memcpy(&magic, b, 4);
  if (magic == 0xBA55ED50u) {
    u64 files; uint16_t hs;
    memcpy(&hs, b + 6, 2); memcpy(&files, b + 8, 8);
    logf_("cuModuleLoadData fatbin bytes=%llu", (u64)hs + files);
  } else if (b[0] == 0x7f && b[1] == 'E') {
    logf_("cuModuleLoadData elf");
  } else {
    logf_("cuModuleLoadData ptx len=%zu", strlen(image));
  }
  *mod = g_next_handle++;
  return 0;
}
CUresult cuModuleUnload(u64 mod) { (void)mod; logf_("cuModuleUnload"); return 0; }
CUresult cuModuleGetFunctionCount(unsigned *n, u64 mod) { (void)mod; *n = 2; return 0; }
CUresult cuModuleEnumerateFunctions(u64 *fns, unsigned n, u64 mod) { (void)mod; if (n < 2) return 1; fns[0] = F_VADD; fns[1] = F_NOARGS; return 0; }
CUresult cuFuncGetName(const char **name, u64 fn) { *name = fn == F_VADD ? "_Z4vaddPfS_S_i" : "_Z6noargsv"; return 0; }
CUresult cuFuncGetParamInfo(u64 fn, size_t i, size_t *off, size_t *size) {
  static const size_t offs[] = {0, 8, 16, 24}, sizes[] = {8, 8, 8, 4};
  if (fn != F_VADD || i >= 4) return 1;
  *off = offs[i]; *size = sizes[i];
  return 0;
}
CUresult cuFuncGetAttribute(int *v, int attr, u64 fn) { (void)fn; *v = attr == 0 ? 1024 : attr == 4 ? 16 : attr == 5 ? 90 : attr * 3; return 0; }
CUresult cuFuncSetAttribute(u64 fn, int attr, int v) { logf_("cuFuncSetAttribute fn=%llx attr=%d value=%d", fn, attr, v); return 0; }
CUresult cuCtxSetLimit(int limit, size_t v) { logf_("cuCtxSetLimit limit=%d value=%zu", limit, v); return limit > 6 ? 215 : 0; }
CUresult cuModuleGetGlobal_v2(u64 *addr, size_t *size, u64 mod, const char *name) {
  (void)mod;
  logf_("cuModuleGetGlobal %s", name);
  if (strcmp(name, "g_scale") != 0) return 500;
  *addr = (u64)(uintptr_t)g_scale; *size = sizeof g_scale;
  return 0;
}

static void run_vadd(void *const *p, unsigned threads) {
  float *a = *(float **)p[0], *b = *(float **)p[1], *c = *(float **)p[2];
  int n = *(int *)p[3];
  for (int i = 0; i < n && i < (int)threads; i++) c[i] = a[i] + b[i];
}
CUresult cuLaunchKernel(u64 fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, u64 stream, void **kernelParams, void **extra) {
  (void)stream;
  if (g_launch_rc) return g_launch_rc;
  if (kernelParams || !extra || extra[0] != (void *)1 || extra[2] != (void *)2 || extra[4] != NULL) return 1;
  unsigned char *buf = extra[1];
  size_t size = *(size_t *)extra[3];
  char hex[256] = {0};
  for (size_t i = 0; i < size && i < 100; i++) sprintf(hex + 2 * i, "%02x", buf[i]);
  logf_("cuLaunchKernel fn=%llx grid=%u,%u,%u block=%u,%u,%u shared=%u params=%s", fn, gx, gy, gz, bx, by, bz, shared, hex);
  if (fn == F_VADD) {
    if (size != 28) return 1;
    void *p[4] = {buf, buf + 8, buf + 16, buf + 24};
    run_vadd(p, gx * bx);
  }
  return 0;
}
CUresult cuLaunchCooperativeKernel(u64 fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                                   unsigned shared, u64 stream, void **kernelParams) {
  (void)stream; (void)gy; (void)gz; (void)by; (void)bz;
  logf_("cuLaunchCooperativeKernel fn=%llx shared=%u", fn, shared);
  if (fn == F_VADD) run_vadd(kernelParams, gx * bx);
  return 0;
}

/* --- streams and events -------------------------------------------------------------------------- */
CUresult cuStreamCreateWithPriority(u64 *s, unsigned flags, int prio) { *s = g_next_handle++; logf_("cuStreamCreate flags=%u prio=%d", flags, prio); return 0; }
CUresult cuStreamDestroy_v2(u64 s) { (void)s; logf_("cuStreamDestroy"); return 0; }
CUresult cuStreamQuery(u64 s) { (void)s; return 0; }
CUresult cuStreamWaitEvent(u64 s, u64 e, unsigned f) { (void)s; (void)e; (void)f; logf_("cuStreamWaitEvent"); return 0; }
CUresult cuEventCreate(u64 *e, unsigned flags) { *e = g_next_handle++; logf_("cuEventCreate flags=%u", flags); return 0; }
CUresult cuEventDestroy_v2(u64 e) { (void)e; logf_("cuEventDestroy"); return 0; }
CUresult cuEventRecord(u64 e, u64 s) { (void)e; (void)s; logf_("cuEventRecord"); return 0; }
CUresult cuEventQuery(u64 e) { (void)e; return now_ns() < g_busy_until ? 600 : g_sync_rc; }
CUresult cuEventSynchronize(u64 e) {
  (void)e;
  int n = __atomic_add_fetch(&g_concurrent_sync, 1, __ATOMIC_SEQ_CST);
  int m = __atomic_load_n(&g_max_concurrent_sync, __ATOMIC_SEQ_CST);
  while (n > m && !__atomic_compare_exchange_n(&g_max_concurrent_sync, &m, n, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {}
  long long wait = g_busy_until - now_ns();
  if (wait > 0) {
    struct timespec ts = {wait / 1000000000LL, wait % 1000000000LL};
    nanosleep(&ts, NULL);
  }
  __atomic_sub_fetch(&g_concurrent_sync, 1, __ATOMIC_SEQ_CST);
  return g_sync_rc;
}
CUresult cuEventElapsedTime(float *ms, u64 a, u64 b) { (void)a; (void)b; *ms = 1.5f; return 0; }
