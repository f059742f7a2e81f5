/* Driver-API checks of the intercept library against the server with its FakeBackend (test/helpers):
 * the fake runs a few kernels written in JS by name (fill_u32, add_one_f32, fault, say), so this program
 * needs no GPU and no nvcc. Usage: driver_fake SCENARIO; exits non-zero with a message on the first
 * mismatch. */
#define _GNU_SOURCE
#include <cuda.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHECK(call) do { CUresult r_ = (call); if (r_ != CUDA_SUCCESS) { const char *n_ = 0; cuGetErrorName(r_, &n_); \
    fprintf(stderr, "%s:%d: %s -> %d %s\n", __FILE__, __LINE__, #call, (int)r_, n_ ? n_ : "?"); exit(1); } } while (0)
#define EXPECT(call, want) do { CUresult r_ = (call); if (r_ != (want)) { \
    fprintf(stderr, "%s:%d: %s -> %d, expected %d\n", __FILE__, __LINE__, #call, (int)r_, (int)(want)); exit(1); } } while (0)
#define ASSERT(c, ...) do { if (!(c)) { fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); exit(1); } } while (0)

static const char *image =
    ".entry fill_u32(.param .u64 p, .param .u32 v, .param .u32 n)\n"
    ".entry add_one_f32(.param .u64 p, .param .u32 n)\n"
    ".entry fault()\n"
    ".entry say(.param .u32 k)\n"
    ".global .u32 g_val[4];\n";

static CUmodule mod;
static CUfunction f_fill, f_add, f_fault, f_say;

static void setup(void)
{
    CUdevice dev;
    CUcontext ctx;
    CHECK(cuInit(0));
    CHECK(cuDeviceGet(&dev, 0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuModuleLoadData(&mod, image));
    CHECK(cuModuleGetFunction(&f_fill, mod, "fill_u32"));
    CHECK(cuModuleGetFunction(&f_add, mod, "add_one_f32"));
    CHECK(cuModuleGetFunction(&f_fault, mod, "fault"));
    CHECK(cuModuleGetFunction(&f_say, mod, "say"));
}

static void fill(CUdeviceptr p, uint32_t v, uint32_t n, CUstream s)
{
    void *args[] = { &p, &v, &n };
    CHECK(cuLaunchKernel(f_fill, 1, 1, 1, 32, 1, 1, 0, s, args, NULL));
}

static void device_info(void)
{
    int n = 0, v = 0, ver = 0;
    char name[256], bus[32];
    CUdevice dev;
    EXPECT(cuDeviceGetCount(&n), CUDA_ERROR_NOT_INITIALIZED);
    CHECK(cuDriverGetVersion(&ver));
    ASSERT(ver >= 13000, "driver version %d", ver);
    CHECK(cuInit(0));
    CHECK(cuDeviceGetCount(&n));
    ASSERT(n == 1, "device count %d", n);
    CHECK(cuDeviceGet(&dev, 0));
    EXPECT(cuDeviceGet(&dev, 1), CUDA_ERROR_INVALID_DEVICE);
    CHECK(cuDeviceGetName(name, sizeof(name), dev));
    CHECK(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
    CHECK(cuDeviceGetPCIBusId(bus, sizeof(bus), dev));
    CUdevice back = -1;
    CHECK(cuDeviceGetByPCIBusId(&back, bus));
    ASSERT(back == dev, "by bus id");
    size_t total = 0;
    CHECK(cuDeviceTotalMem(&total, dev));
    printf("name=%s cc=%d bus=%s total=%zu\n", name, v, bus, total);
}

static void memory(void)
{
    setup();
    const uint32_t n = 1000;
    CUdeviceptr d, d2;
    uint32_t *h = malloc(n * 4);
    CHECK(cuMemAlloc(&d, n * 4));
    CHECK(cuMemAlloc(&d2, n * 4));
    fill(d, 7, n, 0);
    CHECK(cuMemcpyDtoH(h, d, n * 4));
    for (uint32_t i = 0; i < n; i++) ASSERT(h[i] == 7, "fill: h[%u] = %u", i, h[i]);

    float *fh = malloc(n * 4);
    for (uint32_t i = 0; i < n; i++) fh[i] = (float)i;
    CHECK(cuMemcpyHtoD(d2, fh, n * 4));
    void *args[] = { &d2, (void *)&n };
    CHECK(cuLaunchKernel(f_add, 1, 1, 1, 64, 1, 1, 0, 0, args, NULL));
    memset(fh, 0, n * 4);
    CHECK(cuMemcpyDtoH(fh, d2, n * 4));
    for (uint32_t i = 0; i < n; i++) ASSERT(fh[i] == (float)i + 1, "add_one: %u -> %f", i, fh[i]);

    /* the same launch with the parameters packed by the caller (CU_LAUNCH_PARAM_BUFFER_POINTER) */
    struct { uint64_t p; uint32_t v, n; } packed = { d, 99, 10 };
    size_t packed_size = sizeof(packed);
    void *extra[] = { CU_LAUNCH_PARAM_BUFFER_POINTER, &packed, CU_LAUNCH_PARAM_BUFFER_SIZE, &packed_size, CU_LAUNCH_PARAM_END };
    CHECK(cuLaunchKernel(f_fill, 1, 1, 1, 32, 1, 1, 0, 0, NULL, extra));
    CHECK(cuMemcpyDtoH(h, d, n * 4));
    ASSERT(h[9] == 99 && h[10] == 7, "extra params: %u %u", h[9], h[10]);

    CHECK(cuMemsetD32(d, 0xdeadbeef, n));
    CHECK(cuMemsetD8(d, 0x11, 3));
    CHECK(cuMemcpyDtoD(d2, d, n * 4));
    CHECK(cuMemcpy((CUdeviceptr)(uintptr_t)h, d2, n * 4)); /* default-kind copy: classified by the allocation table */
    ASSERT(h[0] == 0xde111111u && h[1] == 0xdeadbeefu && h[n - 1] == 0xdeadbeefu, "memset/dtod: %08x %08x", h[0], h[1]);

    /* 2D: a 16x8 window of a pitched allocation */
    size_t pitch = 0;
    CUdeviceptr p2;
    CHECK(cuMemAllocPitch(&p2, &pitch, 64, 8, 4));
    ASSERT(pitch >= 64, "pitch %zu", pitch);
    uint8_t src[64 * 8], dst[64 * 8 * 2];
    for (int i = 0; i < 64 * 8; i++) src[i] = (uint8_t)(i * 7);
    CUDA_MEMCPY2D c = { 0 };
    c.srcMemoryType = CU_MEMORYTYPE_HOST; c.srcHost = src; c.srcPitch = 64;
    c.dstMemoryType = CU_MEMORYTYPE_DEVICE; c.dstDevice = p2; c.dstPitch = pitch;
    c.WidthInBytes = 64; c.Height = 8;
    CHECK(cuMemcpy2D(&c));
    memset(&c, 0, sizeof(c));
    memset(dst, 0, sizeof(dst));
    c.srcMemoryType = CU_MEMORYTYPE_DEVICE; c.srcDevice = p2; c.srcPitch = pitch;
    c.dstMemoryType = CU_MEMORYTYPE_HOST; c.dstHost = dst; c.dstPitch = 128;
    c.WidthInBytes = 64; c.Height = 8;
    CHECK(cuMemcpy2D(&c));
    for (int r = 0; r < 8; r++) ASSERT(memcmp(dst + r * 128, src + r * 64, 64) == 0, "2D row %d", r);

    /* globals: reachable by copies like allocations */
    CUdeviceptr g;
    size_t gsize;
    uint32_t gv[4] = { 1, 2, 3, 4 }, gr[4] = { 0 };
    CHECK(cuModuleGetGlobal(&g, &gsize, mod, "g_val"));
    ASSERT(gsize == 16, "global size %zu", gsize);
    CHECK(cuMemcpyHtoD(g, gv, 16));
    CHECK(cuMemcpyDtoH(gr, g, 16));
    ASSERT(memcmp(gv, gr, 16) == 0, "global round trip");
    EXPECT(cuMemFree(g), CUDA_ERROR_INVALID_VALUE);

    /* cuModuleLoad reads the image from a file (PTX text has no terminator there) */
    char path[] = "/tmp/rgpu-module-XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0 && write(fd, image, strlen(image)) == (ssize_t)strlen(image), "temp module file");
    close(fd);
    CUmodule fm;
    CUfunction ff;
    CHECK(cuModuleLoad(&fm, path));
    unlink(path);
    CHECK(cuModuleGetFunction(&ff, fm, "add_one_f32"));
    EXPECT(cuModuleGetFunction(&ff, fm, "no_such_kernel"), CUDA_ERROR_NOT_FOUND);
    CHECK(cuModuleUnload(fm));
    EXPECT(cuModuleLoad(&fm, "/nonexistent/module.ptx"), CUDA_ERROR_FILE_NOT_FOUND);

    /* pointer attributes */
    unsigned type = 0;
    CHECK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d + 8));
    ASSERT(type == CU_MEMORYTYPE_DEVICE, "memory type %u", type);
    CUdeviceptr base;
    size_t size;
    CHECK(cuMemGetAddressRange(&base, &size, d + 100));
    ASSERT(base == d && size >= n * 4, "address range");

    /* errors found locally */
    EXPECT(cuMemFree(d + 4), CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuMemcpyHtoD(d, h, n * 4 + 4096), CUDA_ERROR_INVALID_VALUE);
    size_t fr = 0, tot = 0;
    CHECK(cuMemGetInfo(&fr, &tot));
    CUdeviceptr big;
    EXPECT(cuMemAlloc(&big, tot + 1), CUDA_ERROR_OUT_OF_MEMORY);
    EXPECT(cuLaunchKernel(f_fill, 1, 1, 1, 2048, 1, 1, 0, 0, (void *[]){ &d, (void *)&n, (void *)&n }, NULL), CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuLaunchKernel(f_fill, 0, 1, 1, 32, 1, 1, 0, 0, (void *[]){ &d, (void *)&n, (void *)&n }, NULL), CUDA_ERROR_INVALID_VALUE);
    CHECK(cuMemFree(d));
    EXPECT(cuMemFree(d), CUDA_ERROR_INVALID_VALUE);
    CHECK(cuMemFree(d2));
    CHECK(cuCtxSynchronize());
    printf("memory ok\n");
}

static void large(void)
{
    setup();
    /* larger than one 64 MiB frame, so it is split both ways; fits the fake's 256 MiB test device */
    const size_t n = (size_t)96 << 20;
    uint8_t *a = malloc(n), *b = malloc(n);
    uint64_t sum = 0, sum2 = 0;
    for (size_t i = 0; i < n; i += 8) { uint64_t v = i * 0x9E3779B97F4A7C15ull; memcpy(a + i, &v, 8); }
    for (size_t i = 0; i < n; i += 4096) sum += a[i] * (i + 1);
    CUdeviceptr d;
    CHECK(cuMemAlloc(&d, n));
    CHECK(cuMemcpyHtoD(d, a, n));
    memset(b, 0, n);
    CHECK(cuMemcpyDtoH(b, d, n));
    for (size_t i = 0; i < n; i += 4096) sum2 += b[i] * (i + 1);
    ASSERT(sum == sum2 && memcmp(a, b, n) == 0, "large copy mismatch");
    printf("large ok\n");
}

static void CUDA_CB on_stream_done(CUstream s, CUresult status, void *data) { *(int *)data = status == CUDA_SUCCESS ? 1 : -1; }

static void streams(void)
{
    setup();
    CUstream s;
    CUevent e0, e1;
    CUdeviceptr d;
    uint32_t h[64] = { 0 };
    CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CHECK(cuEventCreate(&e0, 0));
    CHECK(cuEventCreate(&e1, 0));
    CHECK(cuMemAlloc(&d, sizeof(h)));
    CHECK(cuEventRecord(e0, s));
    fill(d, 42, 64, s);
    CHECK(cuMemcpyDtoHAsync(h, d, sizeof(h), s));
    CHECK(cuEventRecord(e1, s));
    CHECK(cuStreamSynchronize(s));
    for (int i = 0; i < 64; i++) ASSERT(h[i] == 42, "async dtoh h[%d]=%u", i, h[i]);
    CHECK(cuEventSynchronize(e1));
    float ms = -1;
    CHECK(cuEventElapsedTime(&ms, e0, e1));
    ASSERT(ms >= 0, "elapsed %f", ms);
    EXPECT(cuStreamQuery(s), CUDA_SUCCESS);
    CHECK(cuStreamWaitEvent(NULL, e1, 0));
    unsigned flags = 0;
    CHECK(cuStreamGetFlags(s, &flags));
    ASSERT(flags == CU_STREAM_NON_BLOCKING, "stream flags");
    int called = 0;
    CHECK(cuStreamAddCallback(s, on_stream_done, &called, 0));
    CHECK(cuStreamSynchronize(s)); /* the callback runs on the library's helper thread; a sync waits for it */
    ASSERT(called == 1, "stream callback %d", called);
    CUresult (*prof_start)(void) = NULL;
    CHECK(cuGetProcAddress("cuProfilerStart", (void **)&prof_start, 13000, 0, NULL));
    CHECK(prof_start());
    CHECK(cuEventDestroy(e0));
    CHECK(cuEventDestroy(e1));
    CHECK(cuStreamDestroy(s));
    CHECK(cuCtxSynchronize());
    printf("streams ok\n");
}

static void printf_sticky(void)
{
    setup();
    uint32_t k = 5;
    void *args[] = { &k };
    printf("before\n");
    CHECK(cuLaunchKernel(f_say, 2, 1, 1, 1, 1, 1, 0, 0, args, NULL));
    CHECK(cuCtxSynchronize());
    printf("after\n");
    fflush(stdout);
    CUdeviceptr d;
    CHECK(cuMemAlloc(&d, 64));
    CHECK(cuLaunchKernel(f_fault, 1, 1, 1, 1, 1, 1, 0, 0, NULL, NULL)); /* fire and forget: the fault is deferred */
    EXPECT(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
    uint32_t h[16];
    EXPECT(cuMemcpyDtoH(h, d, 64), CUDA_ERROR_ILLEGAL_ADDRESS); /* sticky */
    EXPECT(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
    printf("sticky ok\n");
}

struct worker { int id; int ok; };

static void *thread_main(void *arg)
{
    struct worker *w = arg;
    CUcontext ctx;
    CHECK(cuDevicePrimaryCtxRetain(&ctx, 0));
    CHECK(cuCtxSetCurrent(ctx));
    uint32_t h[256];
    CUdeviceptr d;
    for (int it = 0; it < 20; it++) {
        CHECK(cuMemAlloc(&d, sizeof(h)));
        fill(d, (uint32_t)(w->id * 1000 + it), 256, 0);
        CHECK(cuMemcpyDtoH(h, d, sizeof(h)));
        for (int i = 0; i < 256; i++) if (h[i] != (uint32_t)(w->id * 1000 + it)) return NULL;
        CHECK(cuMemFree(d));
    }
    w->ok = 1;
    return NULL;
}

static void threads(void)
{
    setup();
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) { w[i].id = i + 1; w[i].ok = 0; pthread_create(&t[i], NULL, thread_main, &w[i]); }
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) ASSERT(w[i].ok, "thread %d failed", i);
    CUcontext none = (CUcontext)1;
    pthread_t t2;
    /* a fresh thread has no current context */
    pthread_create(&t2, NULL, (void *(*)(void *))(void *)cuCtxGetCurrent, &none);
    pthread_join(t2, NULL);
    ASSERT(none == NULL, "new thread inherited a context");
    printf("threads ok\n");
}

static void forked(void)
{
    setup();
    CUdeviceptr d;
    CHECK(cuMemAlloc(&d, 256));
    pid_t pid = fork();
    if (pid == 0) {
        /* the child may not use the parent's session; a new cuInit gives it its own */
        uint32_t h[4];
        CUresult r = cuMemcpyDtoH(h, d, 16);
        if (r != CUDA_ERROR_NOT_INITIALIZED) _exit(2);
        if (cuInit(0) != CUDA_SUCCESS) _exit(3);
        CUcontext ctx;
        cuDevicePrimaryCtxRetain(&ctx, 0);
        cuCtxSetCurrent(ctx);
        CUdeviceptr d2;
        if (cuMemAlloc(&d2, 64) != CUDA_SUCCESS) _exit(4);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
    fill(d, 9, 64, 0);
    uint32_t h[64];
    CHECK(cuMemcpyDtoH(h, d, 256));
    ASSERT(h[63] == 9, "parent after fork");
    printf("fork ok\n");
}

static void procaddr(void)
{
    void *p = NULL, *lib = dlopen("libcuda.so.1", RTLD_NOW);
    ASSERT(lib, "dlopen: %s", dlerror());
    CUdriverProcAddressQueryResult st;
    CHECK(cuGetProcAddress("cuMemAlloc", &p, 3020, 0, &st));
    ASSERT(p == dlsym(lib, "cuMemAlloc_v2"), "cuMemAlloc@3020");
    CHECK(cuGetProcAddress("cuCtxGetDevice", &p, 13000, 0, &st));
    ASSERT(p == dlsym(lib, "cuCtxGetDevice_v2"), "cuCtxGetDevice@13000");
    CHECK(cuGetProcAddress("cuCtxGetDevice", &p, 12000, 0, &st));
    ASSERT(p == dlsym(lib, "cuCtxGetDevice"), "cuCtxGetDevice@12000");
    CHECK(cuGetProcAddress("cuLaunchKernel", &p, 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st));
    ASSERT(p == dlsym(lib, "cuLaunchKernel_ptsz"), "cuLaunchKernel ptsz");
    CHECK(cuGetProcAddress("cuMemcpyHtoD", &p, 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st));
    ASSERT(p == dlsym(lib, "cuMemcpyHtoD_v2_ptds"), "cuMemcpyHtoD ptds");
    p = (void *)1;
    EXPECT(cuGetProcAddress("cuNoSuchThing", &p, 13000, 0, &st), CUDA_ERROR_NOT_FOUND);
    ASSERT(p == NULL && st == CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND, "unknown symbol");
    EXPECT(cuGetProcAddress("", &p, 0, 0, NULL), CUDA_ERROR_NOT_FOUND);
    const char *s = NULL;
    CHECK(cuGetErrorName(CUDA_ERROR_ILLEGAL_ADDRESS, &s));
    ASSERT(strcmp(s, "CUDA_ERROR_ILLEGAL_ADDRESS") == 0, "error name %s", s);
    CHECK(cuGetErrorString(CUDA_ERROR_OUT_OF_MEMORY, &s));
    ASSERT(s && *s, "error string");
    /* an exported but unimplemented entry point answers NOT_SUPPORTED instead of missing */
    CUresult (*stub)(void) = (CUresult (*)(void))dlsym(lib, "cuGraphAddEmptyNode");
    ASSERT(stub && stub() == CUDA_ERROR_NOT_SUPPORTED, "stub");
    printf("procaddr ok\n");
}

/* An image above the size where the library first asks the server's cache by hash. */
static void big_module(void)
{
    CHECK(cuInit(0));
    CUcontext ctx;
    CHECK(cuDevicePrimaryCtxRetain(&ctx, 0));
    CHECK(cuCtxSetCurrent(ctx));
    size_t pad = 300 * 1024, len = strlen(image);
    char *big = malloc(len + pad + 1);
    memcpy(big, image, len);
    for (size_t i = 0; i < pad; i++) big[len + i] = (i % 64 == 63) ? '\n' : (i % 64 < 2 ? '/' : 'x');
    big[len + pad] = 0;
    CUmodule m;
    CUfunction f;
    CHECK(cuModuleLoadData(&m, big));
    CHECK(cuModuleGetFunction(&f, m, "fill_u32"));
    CUdeviceptr d;
    uint32_t v = 5, n = 16, h[16];
    CHECK(cuMemAlloc(&d, 64));
    void *args[] = { &d, &v, &n };
    CHECK(cuLaunchKernel(f, 1, 1, 1, 16, 1, 1, 0, 0, args, NULL));
    CHECK(cuMemcpyDtoH(h, d, 64));
    ASSERT(h[15] == 5, "big module kernel");
    CHECK(cuModuleUnload(m));
    printf("bigmodule ok\n");
}

/* A large asynchronous read followed by a large write, as copy/compute overlap does: the server sends the
 * read's reply while the library is still sending the write, so the library must read while it writes. */
static void overlap(void)
{
    setup();
    const size_t n = (size_t)24 << 20;
    uint8_t *src = malloc(n), *dst = malloc(n);
    for (size_t i = 0; i < n; i++) src[i] = (uint8_t)(i * 31 + 7);
    CUdeviceptr a, b;
    CUstream s1, s2;
    CHECK(cuMemAlloc(&a, n));
    CHECK(cuMemAlloc(&b, n));
    CHECK(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
    CHECK(cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING));
    CHECK(cuMemcpyHtoD(a, src, n));
    for (int it = 0; it < 3; it++) {
        CHECK(cuMemcpyDtoHAsync(dst, a, n, s1));
        CHECK(cuMemcpyHtoDAsync(b, src, n, s2));
        CHECK(cuMemcpyHtoDAsync(b, src, n, s2));
    }
    CHECK(cuStreamSynchronize(s1));
    CHECK(cuStreamSynchronize(s2));
    ASSERT(memcmp(src, dst, n) == 0, "overlap read");
    printf("overlap ok\n");
}

/* Against test/intercept/hostileServer.test.ts: malformed replies become errors, not crashes. */
static void hostile(void)
{
    CUcontext ctx;
    CUmodule m;
    CHECK(cuInit(0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, 0));
    CHECK(cuCtxSetCurrent(ctx));
    printf("first load: %d\n", (int)cuModuleLoadData(&m, image));
    printf("second load: %d\n", (int)cuModuleLoadData(&m, image));
    CUdeviceptr d;
    cuMemAlloc(&d, 64);
    printf("after: %d\n", (int)cuCtxSynchronize());
}

static void *query_later(void *arg)
{
    CUcontext ctx;
    usleep(100 * 1000);
    cuDevicePrimaryCtxRetain(&ctx, 0);
    cuCtxSetCurrent(ctx);
    *(CUresult *)arg = cuStreamQuery(NULL);
    return NULL;
}

/* Against hostileServer.test.ts, which answers the synchronize only after it has seen the other thread's
 * query: a thread waiting for a reply must not keep the others from talking to the server. */
static void concurrent(void)
{
    CUcontext ctx;
    CHECK(cuInit(0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, 0));
    CHECK(cuCtxSetCurrent(ctx));
    pthread_t t;
    CUresult q = CUDA_ERROR_UNKNOWN;
    pthread_create(&t, NULL, query_later, &q);
    CHECK(cuStreamSynchronize(NULL));
    pthread_join(t, NULL);
    CHECK(q);
    printf("concurrent ok\n");
}

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* Costs of the hot paths: launches are batched (no round trip), synchronising calls cost one. */
static void bench(int launches)
{
    setup();
    CUdeviceptr d;
    CHECK(cuMemAlloc(&d, 64));
    CHECK(cuCtxSynchronize());
    uint32_t v = 1, n = 0;
    void *args[] = { &d, &v, &n };
    double t0 = now_us();
    for (int i = 0; i < launches; i++) CHECK(cuLaunchKernel(f_fill, 1, 1, 1, 32, 1, 1, 0, 0, args, NULL));
    double t1 = now_us();
    CHECK(cuCtxSynchronize());
    double t2 = now_us();
    const int syncs = 500;
    for (int i = 0; i < syncs; i++) CHECK(cuStreamQuery(0));
    double t3 = now_us();
    uint32_t h;
    for (int i = 0; i < syncs; i++) CHECK(cuMemcpyDtoH(&h, d, 4));
    double t4 = now_us();
    printf("launch_enqueue_us=%.3f launches_per_s=%.0f sync_rtt_us=%.1f dtoh4_us=%.1f\n", (t1 - t0) / launches,
           launches / ((t2 - t0) / 1e6), (t3 - t2) / syncs, (t4 - t3) / syncs);
}

static void no_server(void)
{
    int n = -1;
    CUresult r = cuInit(0);
    printf("cuInit: %d\n", (int)r);
    ASSERT(cuDeviceGetCount(&n) == r, "later calls repeat the init error");
    /* a second cuInit tries again: the test starts a server and passes its address on stdin */
    char line[128];
    if (!fgets(line, sizeof(line), stdin) || line[0] == '\n') return;
    line[strcspn(line, "\n")] = 0;
    setenv("REMOTE_GPU_SERVER", line, 1);
    r = cuInit(0);
    CHECK(cuDeviceGetCount(&n));
    printf("retry: %d count=%d\n", (int)r, n);
}

static void server_dies(void)
{
    setup();
    CUdeviceptr d;
    CHECK(cuMemAlloc(&d, 256));
    printf("ready\n");
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof(line), stdin)) return; /* the test kills the server, then writes a line */
    uint32_t h[4];
    CUresult r = cuMemcpyDtoH(h, d, 16);
    printf("after loss: %d\n", (int)r);
    r = cuCtxSynchronize();
    printf("again: %d\n", (int)r);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "device")) device_info();
    else if (!strcmp(what, "memory")) memory();
    else if (!strcmp(what, "large")) large();
    else if (!strcmp(what, "streams")) streams();
    else if (!strcmp(what, "sticky")) printf_sticky();
    else if (!strcmp(what, "threads")) threads();
    else if (!strcmp(what, "fork")) forked();
    else if (!strcmp(what, "procaddr")) procaddr();
    else if (!strcmp(what, "serverdies")) server_dies();
    else if (!strcmp(what, "noserver")) no_server();
    else if (!strcmp(what, "bigmodule")) big_module();
    else if (!strcmp(what, "overlap")) overlap();
    else if (!strcmp(what, "hostile")) hostile();
    else if (!strcmp(what, "concurrent")) concurrent();
    else if (!strcmp(what, "bench")) bench(argc > 2 ? atoi(argv[2]) : 20000);
    else { fprintf(stderr, "unknown scenario %s\n", what); return 2; }
    return 0;
}
