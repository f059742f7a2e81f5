// A fault ends its context, not the process: after an out-of-bounds kernel the primary context keeps failing
// with CUDA_ERROR_ILLEGAL_ADDRESS, a context created afterwards (cuCtxCreate) works, and cudaDeviceReset
// gives the runtime a working primary context again.
#include <cstdio>
#include <cstdlib>
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#define CHECK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); exit(1); } } while (0)
#define CU(x) do { CUresult r_ = (x); if (r_ != CUDA_SUCCESS) { \
    fprintf(stderr, "%s:%d: %s: CUresult %d\n", __FILE__, __LINE__, #x, (int)r_); exit(1); } } while (0)
#define ASSERT(c, ...) do { if (!(c)) { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } } while (0)

#define DECL(name, ver) static PFN_##name##_v##ver p_##name;
#define LOAD(name) do { cudaDriverEntryPointQueryResult q_; \
    CHECK(cudaGetDriverEntryPointByVersion(#name, (void **)&p_##name, 12000, cudaEnableDefault, &q_)); \
    ASSERT(q_ == cudaDriverEntryPointSuccess && p_##name, "no driver entry point %s", #name); } while (0)

DECL(cuCtxCreate, 11040) DECL(cuCtxDestroy, 4000) DECL(cuCtxPushCurrent, 4000) DECL(cuCtxPopCurrent, 4000)
DECL(cuMemAlloc, 3020) DECL(cuMemFree, 3020) DECL(cuMemsetD32, 3020) DECL(cuMemcpyDtoH, 3020) DECL(cuCtxGetCurrent, 4000)

__global__ void poke(int *p, long long off) { p[off] = 1; }
__global__ void touch(int *p, int i) { p[i] = 1; }

// A copy large enough for the data lane, there and back, in the current session.
static void big_round_trip(const char *when)
{
    const size_t n = 1 << 20;
    static unsigned char a[1 << 20], b[1 << 20];
    for (size_t i = 0; i < n; i++) a[i] = (unsigned char)(i * 13 + 1);
    void *d;
    CHECK(cudaMalloc(&d, n));
    CHECK(cudaMemcpy(d, a, n, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(b, d, n, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; i++) ASSERT(a[i] == b[i], "%s: byte %zu", when, i);
    CHECK(cudaFree(d));
}

int main()
{
    LOAD(cuCtxCreate); LOAD(cuCtxDestroy); LOAD(cuCtxPushCurrent); LOAD(cuCtxPopCurrent); LOAD(cuMemAlloc);
    LOAD(cuMemFree); LOAD(cuMemsetD32); LOAD(cuMemcpyDtoH); LOAD(cuCtxGetCurrent);
    big_round_trip("before the fault");
    int *p;
    CHECK(cudaMalloc(&p, 256));
    poke<<<1, 1>>>(p, 1LL << 34);
    ASSERT(cudaDeviceSynchronize() == cudaErrorIllegalAddress, "out-of-bounds store did not fault");
    ASSERT(cudaMalloc(&p, 256) == cudaErrorIllegalAddress, "the faulted context still allocates");
    CUcontext primary;
    CU(p_cuCtxGetCurrent(&primary));

    // a new context works
    CUcontext fresh;
    CU(p_cuCtxCreate(&fresh, NULL, 0, 0, 0));
    CUdeviceptr d;
    CU(p_cuMemAlloc(&d, 1024));
    CU(p_cuMemsetD32(d, 0x01020304u, 256));
    unsigned h[256];
    CU(p_cuMemcpyDtoH(h, d, 1024));
    ASSERT(h[0] == 0x01020304u && h[255] == 0x01020304u, "new context read %x", h[0]);

    // the faulted one still fails, with its own fault
    CU(p_cuCtxPushCurrent(primary));
    CUdeviceptr d2;
    CUresult r = p_cuMemAlloc(&d2, 64);
    ASSERT(r == CUDA_ERROR_ILLEGAL_ADDRESS, "the faulted context allocated after a new context was made: %d", (int)r);
    CUcontext popped;
    CU(p_cuCtxPopCurrent(&popped));
    CU(p_cuMemFree(d));
    CU(p_cuCtxDestroy(fresh));

    // cudaDeviceReset clears the primary context's fault: kernels run again
    CU(p_cuCtxPushCurrent(primary));
    CHECK(cudaDeviceReset());
    int *q, out[32];
    CHECK(cudaMalloc(&q, 128));
    CHECK(cudaMemset(q, 0, 128));
    touch<<<1, 1>>>(q, 31);
    CHECK(cudaMemcpy(out, q, 128, cudaMemcpyDeviceToHost));
    ASSERT(out[31] == 1 && out[30] == 0, "kernel after reset");
    big_round_trip("after the reset");
    printf("ctxfault ok\n");
    return 0;
}
