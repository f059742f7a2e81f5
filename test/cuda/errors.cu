// Error paths through the intercept: config | oom | badfree | illegal (illegal address and its stickiness).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>

#define CHECK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); exit(1); } } while (0)
#define ASSERT(c, ...) do { if (!(c)) { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } } while (0)

__global__ void touch(int *p, long long off) { p[off] = 1; }

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    int *d;
    CHECK(cudaMalloc(&d, 1024));
    if (!strcmp(what, "config")) {
        touch<<<1, 2048>>>(d, 0);
        cudaError_t e = cudaGetLastError();
        ASSERT(e != cudaSuccess, "2048 threads per block accepted");
        touch<<<0, 32>>>(d, 0);
        ASSERT(cudaGetLastError() != cudaSuccess, "empty grid accepted");
        touch<<<1, 32>>>(d, 0); /* and the context still works */
        CHECK(cudaDeviceSynchronize());
        printf("config ok: %s\n", cudaGetErrorName(e));
    } else if (!strcmp(what, "oom")) {
        size_t freeb, total;
        CHECK(cudaMemGetInfo(&freeb, &total));
        void *big = nullptr;
        cudaError_t e = cudaMalloc(&big, total + (1ull << 30));
        ASSERT(e == cudaErrorMemoryAllocation, "oversized malloc gave %s", cudaGetErrorName(e));
        cudaGetLastError();
        void *ok = nullptr;
        CHECK(cudaMalloc(&ok, 1 << 20)); /* not sticky */
        printf("oom ok\n");
    } else if (!strcmp(what, "badfree")) {
        cudaError_t e = cudaFree((char *)d + 16);
        ASSERT(e != cudaSuccess, "freeing an interior pointer succeeded");
        cudaGetLastError();
        CHECK(cudaFree(d));
        e = cudaFree(d);
        ASSERT(e != cudaSuccess, "double free succeeded");
        cudaGetLastError();
        printf("badfree ok: %s\n", cudaGetErrorName(e));
    } else if (!strcmp(what, "illegal")) {
        touch<<<1, 1>>>(d, 1ll << 36);
        cudaError_t e = cudaDeviceSynchronize();
        ASSERT(e == cudaErrorIllegalAddress, "out-of-bounds store gave %s", cudaGetErrorName(e));
        int h;
        cudaError_t e2 = cudaMemcpy(&h, d, 4, cudaMemcpyDeviceToHost);
        ASSERT(e2 == cudaErrorIllegalAddress, "error not sticky: %s", cudaGetErrorName(e2));
        void *p;
        cudaError_t e3 = cudaMalloc(&p, 16);
        ASSERT(e3 == cudaErrorIllegalAddress, "malloc after fault gave %s", cudaGetErrorName(e3));
        printf("illegal ok\n");
    } else if (!strcmp(what, "reset")) {
        size_t f0, f1, f2, total;
        CHECK(cudaMemGetInfo(&f0, &total));
        void *big;
        CHECK(cudaMalloc(&big, 64 << 20));
        CHECK(cudaMemGetInfo(&f1, &total));
        ASSERT(f0 - f1 >= (64 << 20), "allocation not counted: %zu", f0 - f1);
        CHECK(cudaDeviceReset()); /* frees every allocation of the context */
        CHECK(cudaMemGetInfo(&f2, &total));
        ASSERT(f2 > f1 && f2 + 4096 >= f0 + 1024, "reset kept memory: before %zu after %zu", f0, f2);
        int *p, h[32];
        CHECK(cudaMalloc(&p, 128));
        touch<<<1, 1>>>(p, 31);
        CHECK(cudaMemcpy(h, p, 128, cudaMemcpyDeviceToHost));
        ASSERT(h[31] == 1, "kernel after reset");
        printf("reset ok\n");
    } else {
        fprintf(stderr, "unknown scenario %s\n", what);
        return 2;
    }
    return 0;
}
