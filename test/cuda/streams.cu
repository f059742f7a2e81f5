// Streams, pinned memory, events, host threads and large copies through the intercept.
// Scenarios: streams | threads [floats] | large MiB | pipeline MiB
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>
#include <cuda_runtime.h>

#define CHECK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); exit(1); } } while (0)
#define ASSERT(c, ...) do { if (!(c)) { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } } while (0)

__global__ void scale(float *p, float k, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) p[i] = p[i] * k + 1.0f;
}

static void run_streams()
{
    const int n = 4096, S = 3;
    float *h;
    CHECK(cudaMallocHost(&h, S * n * sizeof(float)));
    for (int i = 0; i < S * n; i++) h[i] = (float)(i % 100);
    cudaStream_t s[S];
    float *d[S];
    cudaEvent_t start, stop;
    CHECK(cudaEventCreate(&start));
    CHECK(cudaEventCreate(&stop));
    for (int k = 0; k < S; k++) { CHECK(cudaStreamCreateWithFlags(&s[k], cudaStreamNonBlocking)); CHECK(cudaMalloc(&d[k], n * 4)); }
    CHECK(cudaEventRecord(start, s[0]));
    for (int k = 0; k < S; k++) {
        CHECK(cudaMemcpyAsync(d[k], h + k * n, n * 4, cudaMemcpyHostToDevice, s[k]));
        scale<<<(n + 255) / 256, 256, 0, s[k]>>>(d[k], (float)(k + 2), n);
        CHECK(cudaMemcpyAsync(h + k * n, d[k], n * 4, cudaMemcpyDeviceToHost, s[k]));
    }
    for (int k = 1; k < S; k++) { cudaEvent_t e; CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
        CHECK(cudaEventRecord(e, s[k])); CHECK(cudaStreamWaitEvent(s[0], e, 0)); CHECK(cudaEventDestroy(e)); }
    CHECK(cudaEventRecord(stop, s[0]));
    CHECK(cudaEventSynchronize(stop));
    for (int k = 0; k < S; k++) CHECK(cudaStreamSynchronize(s[k]));
    float ms = -1;
    CHECK(cudaEventElapsedTime(&ms, start, stop));
    ASSERT(ms > 0, "elapsed %f", ms);
    for (int k = 0; k < S; k++)
        for (int i = 0; i < n; i++) {
            float want = (float)((k * n + i) % 100) * (k + 2) + 1.0f;
            ASSERT(h[k * n + i] == want, "stream %d h[%d]=%f want %f", k, i, h[k * n + i], want);
        }
    ASSERT(cudaStreamQuery(s[0]) == cudaSuccess, "stream query");
    for (int k = 0; k < S; k++) { CHECK(cudaStreamDestroy(s[k])); CHECK(cudaFree(d[k])); }
    CHECK(cudaFreeHost(h));
    printf("streams ok elapsed=%.3fms\n", ms);
}

static void run_threads(int n)
{
    const int T = 4;
    std::vector<std::thread> th;
    std::vector<int> ok(T, 0);
    for (int t = 0; t < T; t++)
        th.emplace_back([t, n, &ok]() {
            std::vector<float> h(n);
            for (int i = 0; i < n; i++) h[i] = (float)(i + t);
            float *d;
            cudaStream_t s;
            if (cudaStreamCreate(&s) != cudaSuccess || cudaMalloc(&d, n * 4) != cudaSuccess) return;
            for (int it = 0; it < 5; it++) {
                cudaMemcpyAsync(d, h.data(), n * 4, cudaMemcpyHostToDevice, s);
                scale<<<(n + 255) / 256, 256, 0, s>>>(d, 2.0f, n);
                cudaMemcpyAsync(h.data(), d, n * 4, cudaMemcpyDeviceToHost, s);
                if (cudaStreamSynchronize(s) != cudaSuccess) return;
            }
            for (int i = 0; i < n; i++) {
                float v = (float)(i + t);
                for (int it = 0; it < 5; it++) v = v * 2.0f + 1.0f;
                if (h[i] != v) return;
            }
            cudaFree(d);
            cudaStreamDestroy(s);
            ok[t] = 1;
        });
    for (auto &x : th) x.join();
    for (int t = 0; t < T; t++) ASSERT(ok[t], "thread %d failed", t);
    printf("threads ok\n");
}

static void run_large(size_t mib)
{
    size_t n = mib << 20;
    uint8_t *a = (uint8_t *)malloc(n), *b = (uint8_t *)malloc(n);
    uint64_t x = 88172645463325252ull, sum = 0, sum2 = 0;
    for (size_t i = 0; i < n; i += 8) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; memcpy(a + i, &x, 8); sum += x; }
    void *d;
    CHECK(cudaMalloc(&d, n));
    CHECK(cudaMemcpy(d, a, n, cudaMemcpyHostToDevice));
    memset(b, 0, n);
    CHECK(cudaMemcpy(b, d, n, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; i += 8) { uint64_t v; memcpy(&v, b + i, 8); sum2 += v; }
    ASSERT(sum == sum2 && memcmp(a, b, n) == 0, "large copy checksum %llx != %llx", (unsigned long long)sum2, (unsigned long long)sum);
    CHECK(cudaFree(d));
    printf("large ok %zu MiB checksum=%016llx\n", mib, (unsigned long long)sum);
}

// Large copies in flight on two streams at once: an async read back still pending while a large write goes
// out behind it (each must drain the other's direction), then copies at odd offsets and lengths.
static void run_pipeline(size_t mib)
{
    size_t n = mib << 20, nf = n / 4;
    float *in1, *out1;
    uint8_t *in2 = (uint8_t *)malloc(n), *out2 = (uint8_t *)malloc(n);
    CHECK(cudaMallocHost(&in1, n));
    CHECK(cudaMallocHost(&out1, n));
    for (size_t i = 0; i < nf; i++) in1[i] = (float)(i % 1000);
    for (size_t i = 0; i < n; i++) in2[i] = (uint8_t)(i * 7 + 3);
    float *d1;
    uint8_t *d2;
    cudaStream_t s1, s2;
    CHECK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    CHECK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    CHECK(cudaMalloc(&d1, n));
    CHECK(cudaMalloc(&d2, n));
    CHECK(cudaMemcpyAsync(d1, in1, n, cudaMemcpyHostToDevice, s1));
    scale<<<(unsigned)((nf + 255) / 256), 256, 0, s1>>>(d1, 2.0f, (int)nf);
    CHECK(cudaMemcpyAsync(out1, d1, n, cudaMemcpyDeviceToHost, s1));
    CHECK(cudaMemcpyAsync(d2, in2, n, cudaMemcpyHostToDevice, s2));
    CHECK(cudaMemcpyAsync(out2, d2, n, cudaMemcpyDeviceToHost, s2));
    CHECK(cudaStreamSynchronize(s1));
    CHECK(cudaStreamSynchronize(s2));
    for (size_t i = 0; i < nf; i++) ASSERT(out1[i] == (float)(i % 1000) * 2.0f + 1.0f, "pipeline out1[%zu]=%f", i, out1[i]);
    ASSERT(memcmp(in2, out2, n) == 0, "pipeline: second buffer differs");
    // odd offsets and lengths, and a copy that overwrites part of what was just read
    size_t len = n - 1001;
    CHECK(cudaMemcpy(d2 + 3, in2 + 5, len, cudaMemcpyHostToDevice));
    memset(out2, 0, n);
    CHECK(cudaMemcpy(out2, d2, n, cudaMemcpyDeviceToHost));
    ASSERT(memcmp(out2, in2, 3) == 0 && memcmp(out2 + 3, in2 + 5, len) == 0 && memcmp(out2 + 3 + len, in2 + 3 + len, n - 3 - len) == 0,
           "pipeline: odd-offset copy differs");
    // 2D: strided host rows into a pitched allocation and back into rows of another pitch, sync and async
    const size_t w = 3000, h = 700, sp = 3100, dp = 3050;
    uint8_t *p2d, *hs = (uint8_t *)malloc(sp * h), *hd = (uint8_t *)calloc(dp * h, 1), *ha = (uint8_t *)calloc(w * h, 1);
    size_t pitch;
    CHECK(cudaMallocPitch(&p2d, &pitch, w, h));
    for (size_t i = 0; i < sp * h; i++) hs[i] = (uint8_t)(i * 11 + 1);
    CHECK(cudaMemcpy2D(p2d, pitch, hs, sp, w, h, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy2D(hd, dp, p2d, pitch, w, h, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy2DAsync(ha, w, p2d, pitch, w, h, cudaMemcpyDeviceToHost, s2));
    CHECK(cudaStreamSynchronize(s2));
    for (size_t r = 0; r < h; r++) {
        ASSERT(memcmp(hd + r * dp, hs + r * sp, w) == 0, "pipeline: 2D row %zu differs", r);
        ASSERT(memcmp(ha + r * w, hs + r * sp, w) == 0, "pipeline: async 2D row %zu differs", r);
    }
    CHECK(cudaFree(p2d));
    free(hs);
    free(hd);
    free(ha);
    CHECK(cudaFree(d1));
    CHECK(cudaFree(d2));
    CHECK(cudaFreeHost(in1));
    CHECK(cudaFreeHost(out1));
    free(in2);
    free(out2);
    CHECK(cudaStreamDestroy(s1));
    CHECK(cudaStreamDestroy(s2));
    printf("pipeline ok %zu MiB\n", mib);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "streams")) run_streams();
    else if (!strcmp(what, "threads")) run_threads(argc > 2 ? atoi(argv[2]) : 2048);
    else if (!strcmp(what, "large")) run_large(argc > 2 ? strtoul(argv[2], 0, 10) : 256);
    else if (!strcmp(what, "pipeline")) run_pipeline(argc > 2 ? strtoul(argv[2], 0, 10) : 48);
    else { fprintf(stderr, "unknown scenario %s\n", what); return 2; }
    return 0;
}
