// Kernel features through the intercept, one scenario per argument:
// matmul | atomics | warp | params | symbols | printf. Each checks its own results (exit 1 on mismatch).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>

#define CHECK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); exit(1); } } while (0)
#define ASSERT(c, ...) do { if (!(c)) { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } } while (0)

#define TILE 16

__global__ void matmul(const float *A, const float *B, float *C, int n)
{
    __shared__ float As[TILE][TILE], Bs[TILE][TILE];
    int row = blockIdx.y * TILE + threadIdx.y, col = blockIdx.x * TILE + threadIdx.x;
    float acc = 0;
    for (int t = 0; t < n / TILE; t++) {
        As[threadIdx.y][threadIdx.x] = A[row * n + t * TILE + threadIdx.x];
        Bs[threadIdx.y][threadIdx.x] = B[(t * TILE + threadIdx.y) * n + col];
        __syncthreads();
        for (int k = 0; k < TILE; k++) acc += As[threadIdx.y][k] * Bs[k][threadIdx.x];
        __syncthreads();
    }
    C[row * n + col] = acc;
}

static void run_matmul()
{
    const int n = 64;
    float *A = new float[n * n], *B = new float[n * n], *C = new float[n * n];
    for (int i = 0; i < n * n; i++) { A[i] = (i % 7) - 3; B[i] = (i % 5) - 2; }
    float *dA, *dB, *dC;
    CHECK(cudaMalloc(&dA, n * n * 4)); CHECK(cudaMalloc(&dB, n * n * 4)); CHECK(cudaMalloc(&dC, n * n * 4));
    CHECK(cudaMemcpy(dA, A, n * n * 4, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(dB, B, n * n * 4, cudaMemcpyHostToDevice));
    matmul<<<dim3(n / TILE, n / TILE), dim3(TILE, TILE)>>>(dA, dB, dC, n);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(C, dC, n * n * 4, cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            float ref = 0;
            for (int k = 0; k < n; k++) ref += A[i * n + k] * B[k * n + j];
            ASSERT(C[i * n + j] == ref, "matmul C[%d][%d]=%f want %f", i, j, C[i * n + j], ref);
        }
    printf("matmul ok\n");
}

__global__ void histogram(const unsigned *in, int n, unsigned *bins, unsigned long long *total)
{
    __shared__ unsigned local[16];
    if (threadIdx.x < 16) local[threadIdx.x] = 0;
    __syncthreads();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        atomicAdd(&local[in[i] % 16], 1u);
        atomicAdd(total, (unsigned long long)in[i]);
    }
    __syncthreads();
    if (threadIdx.x < 16) atomicAdd(&bins[threadIdx.x], local[threadIdx.x]);
}

__global__ void maxcas(const int *in, int n, int *out)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { atomicMax(out, in[i]); atomicMin(out + 1, in[i]); atomicExch(out + 2, 1); }
}

static void run_atomics()
{
    const int n = 5000;
    unsigned *h = new unsigned[n];
    unsigned ref[16] = { 0 };
    unsigned long long reft = 0;
    for (int i = 0; i < n; i++) { h[i] = (i * 2654435761u) >> 7; ref[h[i] % 16]++; reft += h[i]; }
    unsigned *din, *dbins;
    unsigned long long *dt;
    CHECK(cudaMalloc(&din, n * 4)); CHECK(cudaMalloc(&dbins, 64)); CHECK(cudaMalloc(&dt, 8));
    CHECK(cudaMemcpy(din, h, n * 4, cudaMemcpyHostToDevice));
    CHECK(cudaMemset(dbins, 0, 64)); CHECK(cudaMemset(dt, 0, 8));
    histogram<<<4, 128>>>(din, n, dbins, dt);
    unsigned bins[16];
    unsigned long long t;
    CHECK(cudaMemcpy(bins, dbins, 64, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(&t, dt, 8, cudaMemcpyDeviceToHost));
    for (int b = 0; b < 16; b++) ASSERT(bins[b] == ref[b], "bin %d: %u want %u", b, bins[b], ref[b]);
    ASSERT(t == reft, "total %llu want %llu", t, reft);
    int *vals = new int[n], *dv, *dout, out[3] = { -2147483647, 2147483647, 0 };
    int mx = -2147483647, mn = 2147483647;
    for (int i = 0; i < n; i++) { vals[i] = (int)((i * 7919) % 10007) - 5000; if (vals[i] > mx) mx = vals[i]; if (vals[i] < mn) mn = vals[i]; }
    CHECK(cudaMalloc(&dv, n * 4)); CHECK(cudaMalloc(&dout, 12));
    CHECK(cudaMemcpy(dv, vals, n * 4, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(dout, out, 12, cudaMemcpyHostToDevice));
    maxcas<<<(n + 127) / 128, 128>>>(dv, n, dout);
    CHECK(cudaMemcpy(out, dout, 12, cudaMemcpyDeviceToHost));
    ASSERT(out[0] == mx && out[1] == mn && out[2] == 1, "max/min %d %d want %d %d", out[0], out[1], mx, mn);
    printf("atomics ok\n");
}

__global__ void warps(const int *in, int *sum, unsigned *ballot, int *anyall, int *bcast)
{
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    int v = in[threadIdx.x];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffff, v, o);
    if (lane == 0) sum[w] = v;
    unsigned b = __ballot_sync(0xffffffff, in[threadIdx.x] & 1);
    if (lane == 0) ballot[w] = b;
    int a = __any_sync(0xffffffff, in[threadIdx.x] > 90), l = __all_sync(0xffffffff, in[threadIdx.x] >= 0);
    if (lane == 0) anyall[w] = a * 2 + l;
    int x = __shfl_sync(0xffffffff, in[threadIdx.x], 3);
    int y = __shfl_xor_sync(0xffffffff, in[threadIdx.x], 1);
    if (lane == 5) bcast[w] = x * 1000 + y;
}

static void run_warp()
{
    const int n = 64;
    int h[n];
    for (int i = 0; i < n; i++) h[i] = (i * 37) % 101;
    int *din, *dsum, *daa, *db;
    unsigned *dbal;
    CHECK(cudaMalloc(&din, n * 4)); CHECK(cudaMalloc(&dsum, 8)); CHECK(cudaMalloc(&dbal, 8)); CHECK(cudaMalloc(&daa, 8)); CHECK(cudaMalloc(&db, 8));
    CHECK(cudaMemcpy(din, h, n * 4, cudaMemcpyHostToDevice));
    warps<<<1, n>>>(din, dsum, dbal, daa, db);
    int sum[2], aa[2], bc[2];
    unsigned bal[2];
    CHECK(cudaMemcpy(sum, dsum, 8, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(bal, dbal, 8, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(aa, daa, 8, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(bc, db, 8, cudaMemcpyDeviceToHost));
    for (int w = 0; w < 2; w++) {
        int s = 0, any = 0;
        unsigned b = 0;
        for (int l = 0; l < 32; l++) { s += h[w * 32 + l]; if (h[w * 32 + l] & 1) b |= 1u << l; if (h[w * 32 + l] > 90) any = 1; }
        ASSERT(sum[w] == s, "warp %d sum %d want %d", w, sum[w], s);
        ASSERT(bal[w] == b, "warp %d ballot %08x want %08x", w, bal[w], b);
        ASSERT(aa[w] == any * 2 + 1, "warp %d any/all %d", w, aa[w]);
        ASSERT(bc[w] == h[w * 32 + 3] * 1000 + h[w * 32 + 4], "warp %d shfl %d", w, bc[w]);
    }
    printf("warp ok\n");
}

struct __align__(16) Mixed { double d; int i; char c; };

__global__ void params(char c, Mixed s, long long big, double x, short sh, unsigned long long *out)
{
    out[0] = (unsigned long long)(long long)c;
    out[1] = (unsigned long long)(long long)(s.d * 4);
    out[2] = (unsigned long long)(long long)s.i;
    out[3] = (unsigned long long)(long long)s.c;
    out[4] = (unsigned long long)big;
    out[5] = (unsigned long long)(long long)(x * 8);
    out[6] = (unsigned long long)(long long)sh;
}

static void run_params()
{
    unsigned long long *d, h[7];
    CHECK(cudaMalloc(&d, sizeof(h)));
    Mixed s = { 2.75, -123456, 'z' };
    long long big = 0x123456789abcdefLL;
    params<<<1, 1>>>('q', s, big, -1.5, (short)-300, d);
    CHECK(cudaMemcpy(h, d, sizeof(h), cudaMemcpyDeviceToHost));
    ASSERT((long long)h[0] == 'q' && (long long)h[1] == 11 && (long long)h[2] == -123456 && (long long)h[3] == 'z',
           "params %lld %lld %lld %lld", (long long)h[0], (long long)h[1], (long long)h[2], (long long)h[3]);
    ASSERT((long long)h[4] == big && (long long)h[5] == -12 && (long long)h[6] == -300, "params64 %llx %lld %lld", h[4], (long long)h[5], (long long)h[6]);
    printf("params ok\n");
}

__constant__ float c_scale[4];
__device__ int d_counter;
__device__ float d_table[8];

__global__ void use_symbols(float *out)
{
    int i = threadIdx.x;
    out[i] = d_table[i] * c_scale[i % 4];
    atomicAdd(&d_counter, 1);
}

static void run_symbols()
{
    float scale[4] = { 1, 2, 3, 4 }, table[8], out[8];
    for (int i = 0; i < 8; i++) table[i] = i + 0.5f;
    int zero = 0, counter = -1;
    CHECK(cudaMemcpyToSymbol(c_scale, scale, sizeof(scale)));
    CHECK(cudaMemcpyToSymbol(d_table, table, sizeof(table)));
    CHECK(cudaMemcpyToSymbol(d_counter, &zero, sizeof(zero)));
    float *d;
    CHECK(cudaMalloc(&d, sizeof(out)));
    use_symbols<<<1, 8>>>(d);
    CHECK(cudaMemcpy(out, d, sizeof(out), cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpyFromSymbol(&counter, d_counter, sizeof(counter)));
    for (int i = 0; i < 8; i++) ASSERT(out[i] == table[i] * scale[i % 4], "symbol out[%d]=%f", i, out[i]);
    ASSERT(counter == 8, "counter %d", counter);
    void *addr = nullptr;
    size_t size = 0;
    CHECK(cudaGetSymbolAddress(&addr, d_table));
    CHECK(cudaGetSymbolSize(&size, d_table));
    ASSERT(addr && size == sizeof(table), "symbol size %zu", size);
    printf("symbols ok\n");
}

__global__ void hello(int k)
{
    printf("device says %d from block %d thread %d\n", k, blockIdx.x, threadIdx.x);
}

static void run_printf()
{
    printf("host before\n");
    hello<<<2, 2>>>(7);
    CHECK(cudaDeviceSynchronize());
    printf("host after\n");
}

__global__ void coop(int *p) { p[blockIdx.x * blockDim.x + threadIdx.x] += 1; }

// Runtime calls that map onto less common driver entry points.
static void run_misc()
{
    // 2D copies and memsets on a pitched allocation
    const int W = 40, H = 6;
    int *d;
    size_t pitch;
    CHECK(cudaMallocPitch(&d, &pitch, W * 4, H));
    ASSERT(pitch >= W * 4, "pitch %zu", pitch);
    CHECK(cudaMemset2D(d, pitch, 0, W * 4, H));
    int h[H][W], back[H][W];
    for (int r = 0; r < H; r++) for (int c = 0; c < W; c++) h[r][c] = r * 100 + c;
    CHECK(cudaMemcpy2D(d, pitch, h, W * 4, (W - 8) * 4, H, cudaMemcpyHostToDevice));
    memset(back, 0xff, sizeof(back));
    CHECK(cudaMemcpy2D(back, W * 4, d, pitch, W * 4, H, cudaMemcpyDeviceToHost));
    for (int r = 0; r < H; r++) for (int c = 0; c < W; c++)
        ASSERT(back[r][c] == (c < W - 8 ? h[r][c] : 0), "2D [%d][%d]=%d", r, c, back[r][c]);

    // kernel attributes and occupancy, answered from the module's metadata
    cudaFuncAttributes fa;
    CHECK(cudaFuncGetAttributes(&fa, matmul));
    ASSERT(fa.maxThreadsPerBlock > 0 && fa.sharedSizeBytes >= 2 * TILE * TILE * 4, "func attrs %d %zu", fa.maxThreadsPerBlock, fa.sharedSizeBytes);
    int blocks = 0, minGrid = 0, block = 0;
    CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, matmul, 256, 0));
    CHECK(cudaOccupancyMaxPotentialBlockSize(&minGrid, &block, coop, 0, 0));
    ASSERT(blocks > 0 && block > 0 && minGrid > 0, "occupancy %d %d %d", blocks, block, minGrid);

    // stream-ordered allocation and a launch through cudaLaunchKernelEx
    cudaStream_t s;
    CHECK(cudaStreamCreate(&s));
    int *a;
    CHECK(cudaMallocAsync(&a, 64 * 4, s));
    CHECK(cudaMemsetAsync(a, 0, 64 * 4, s));
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(2);
    cfg.blockDim = dim3(32);
    cfg.stream = s;
    CHECK(cudaLaunchKernelEx(&cfg, coop, a));
    int out[64];
    CHECK(cudaMemcpyAsync(out, a, sizeof(out), cudaMemcpyDeviceToHost, s));
    CHECK(cudaFreeAsync(a, s));
    int called = 0;
    CHECK(cudaStreamAddCallback(s, [](cudaStream_t, cudaError_t st, void *p) { *(int *)p = st == cudaSuccess ? 1 : -1; }, &called, 0));
    CHECK(cudaStreamSynchronize(s));
    ASSERT(called == 1, "stream callback %d", called);
    CHECK(cudaProfilerStart()); // brackets around a region of interest keep working
    CHECK(cudaProfilerStop());
    for (int i = 0; i < 64; i++) ASSERT(out[i] == 1, "launchEx out[%d]=%d", i, out[i]);

    // pointer attributes tell device memory from host memory
    cudaPointerAttributes pa;
    CHECK(cudaPointerGetAttributes(&pa, d));
    ASSERT(pa.type == cudaMemoryTypeDevice, "device pointer type %d", (int)pa.type);
    CHECK(cudaPointerGetAttributes(&pa, h));
    ASSERT(pa.type == cudaMemoryTypeUnregistered, "host pointer type %d", (int)pa.type);

    // memory the remote device cannot reach is refused cleanly, not faked
    void *mapped = nullptr;
    ASSERT(cudaHostAlloc(&mapped, 4096, cudaHostAllocMapped) != cudaSuccess, "mapped host memory accepted");
    cudaGetLastError();
    void *managed = nullptr;
    ASSERT(cudaMallocManaged(&managed, 4096) != cudaSuccess, "managed memory accepted");
    cudaGetLastError();
    CHECK(cudaDeviceSynchronize());
    printf("misc ok\n");
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "matmul")) run_matmul();
    else if (!strcmp(what, "atomics")) run_atomics();
    else if (!strcmp(what, "warp")) run_warp();
    else if (!strcmp(what, "params")) run_params();
    else if (!strcmp(what, "symbols")) run_symbols();
    else if (!strcmp(what, "printf")) run_printf();
    else if (!strcmp(what, "misc")) run_misc();
    else { fprintf(stderr, "unknown scenario %s\n", what); return 2; }
    return 0;
}
