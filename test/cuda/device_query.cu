// cudaGetDeviceProperties through the intercept: every field comes from the server's device profile.
// Prints the fields as key=value lines for the test to compare with the profile; exits non-zero on error.
#include <cstdio>
#include <cuda_runtime.h>

#define CHECK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); return 1; } } while (0)

int main()
{
    int n = 0, drv = 0, rt = 0;
    CHECK(cudaGetDeviceCount(&n));
    CHECK(cudaDriverGetVersion(&drv));
    CHECK(cudaRuntimeGetVersion(&rt));
    cudaDeviceProp p;
    CHECK(cudaGetDeviceProperties(&p, 0));
    printf("count=%d\ndriver=%d\nruntime=%d\nname=%s\ntotalGlobalMem=%zu\nmajor=%d\nminor=%d\n", n, drv, rt, p.name,
           p.totalGlobalMem, p.major, p.minor);
    printf("multiProcessorCount=%d\nwarpSize=%d\nmaxThreadsPerBlock=%d\nsharedMemPerBlock=%zu\npciBusID=%d\n",
           p.multiProcessorCount, p.warpSize, p.maxThreadsPerBlock, p.sharedMemPerBlock, p.pciBusID);
    size_t freeb = 0, total = 0;
    CHECK(cudaMemGetInfo(&freeb, &total));
    void *d = nullptr;
    CHECK(cudaMalloc(&d, 1 << 20));
    int h[256], back[256];
    for (int i = 0; i < 256; i++) h[i] = i * 3;
    CHECK(cudaMemcpy(d, h, sizeof(h), cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(back, d, sizeof(h), cudaMemcpyDeviceToHost));
    for (int i = 0; i < 256; i++) if (back[i] != h[i]) { fprintf(stderr, "copy mismatch at %d\n", i); return 1; }
    CHECK(cudaFree(d));
    printf("memInfoTotal=%zu\n", total);
    return 0;
}
