// Host functions through the intercept: cudaLaunchHostFunc returns before its function runs; the function
// sees the results of the work queued before it; work queued after it on the same stream starts only once
// it has returned; other streams are not held up; cudaStreamAddCallback gets the stream's status; no thread
// is started until a host function is used, exactly one after.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <unistd.h>
#include <cuda_runtime.h>

#define CHECK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); exit(1); } } while (0)
#define ASSERT(c, ...) do { if (!(c)) { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } } while (0)

__global__ void fill(int *p, int v, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) p[i] = v + i;
}

static int threads()
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static double ms_since(std::chrono::steady_clock::time_point t)
{
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

struct probe {
    const int *seen;     // host copy made by the stream before the function
    int n;
    int ok;
    int *next_input;     // the function writes what the stream copies to the device after it
    std::atomic<int> done;
};

static void CUDART_CB slow_check(void *p)
{
    probe *pr = (probe *)p;
    usleep(300 * 1000);
    pr->ok = 1;
    for (int i = 0; i < pr->n; i++) if (pr->seen[i] != 5 + i) pr->ok = 0;
    for (int i = 0; i < pr->n; i++) pr->next_input[i] = 1000 + i;
    pr->done.store(1);
}

static cudaError_t cb_status = cudaErrorUnknown;
static cudaStream_t cb_stream;
static void CUDART_CB legacy_cb(cudaStream_t s, cudaError_t status, void *p)
{
    cb_stream = s;
    cb_status = status;
    ((std::atomic<int> *)p)->store(1);
}

int main()
{
    const int n = 256;
    int *d, *d2, *h, *in;
    CHECK(cudaMalloc(&d, n * 4));
    CHECK(cudaMalloc(&d2, n * 4));
    CHECK(cudaMallocHost(&h, n * 4));
    CHECK(cudaMallocHost(&in, n * 4));
    memset(in, 0, n * 4);
    cudaStream_t s, other;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CHECK(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking));
    CHECK(cudaDeviceSynchronize());
    int before = threads();

    probe pr = { h, n, 0, in, {0} };
    fill<<<1, n, 0, s>>>(d, 5, n);
    CHECK(cudaMemcpyAsync(h, d, n * 4, cudaMemcpyDeviceToHost, s));
    auto t0 = std::chrono::steady_clock::now();
    CHECK(cudaLaunchHostFunc(s, slow_check, &pr));
    double call_ms = ms_since(t0);
    ASSERT(call_ms < 150 && !pr.done.load(), "cudaLaunchHostFunc blocked for %.0f ms", call_ms);
    ASSERT(threads() == before + 1, "%d threads after the first host function, %d before", threads(), before);
    ASSERT(cudaStreamQuery(s) == cudaErrorNotReady, "the stream reports done while its host function is pending");

    // another stream is not held up by the pending function
    fill<<<1, n, 0, other>>>(d2, 7, n);
    CHECK(cudaStreamSynchronize(other));
    ASSERT(!pr.done.load(), "work on another stream waited for the host function");
    // nor is the legacy stream: s is non-blocking
    int probe2[4];
    CHECK(cudaMemcpy(probe2, d2, sizeof(probe2), cudaMemcpyDeviceToHost));
    ASSERT(probe2[3] == 10 && !pr.done.load(), "a legacy-stream copy waited for a non-blocking stream's host function");

    // the copy queued after the function reads what the function wrote
    CHECK(cudaMemcpyAsync(d, in, n * 4, cudaMemcpyHostToDevice, s));
    CHECK(cudaStreamSynchronize(s));
    ASSERT(pr.done.load() && pr.ok, "the host function did not see the earlier work (done %d ok %d)", pr.done.load(), pr.ok);
    CHECK(cudaMemcpy(h, d, n * 4, cudaMemcpyDeviceToHost));
    ASSERT(h[3] == 1003 && h[n - 1] == 1000 + n - 1, "work after the host function started before it returned: h[3]=%d", h[3]);
    double total_ms = ms_since(t0);

    // the legacy callback gets the stream and its status
    std::atomic<int> flag{0};
    CHECK(cudaStreamAddCallback(s, legacy_cb, &flag, 0));
    CHECK(cudaStreamSynchronize(s));
    ASSERT(flag.load() && cb_status == cudaSuccess && cb_stream == s, "stream callback: ran %d status %d", flag.load(), (int)cb_status);

    // many functions on two streams: in order within each, all done by a device synchronize, one helper thread
    static int order[64], next;
    struct step { int k; };
    static step steps[64];
    for (int k = 0; k < 64; k++) {
        steps[k].k = k;
        CHECK(cudaLaunchHostFunc(k % 2 ? s : other, [](void *p) { order[next++] = ((step *)p)->k; }, &steps[k]));
    }
    CHECK(cudaDeviceSynchronize());
    ASSERT(next == 64, "%d of 64 host functions ran by cudaDeviceSynchronize", next);
    int last[2] = { -1, -1 }; // in order within each stream
    for (int k = 0; k < 64; k++) {
        ASSERT(order[k] > last[order[k] % 2], "host function %d ran after %d on the same stream", order[k], last[order[k] % 2]);
        last[order[k] % 2] = order[k];
    }
    ASSERT(threads() == before + 1, "%d threads, expected %d", threads(), before + 1);
    printf("hostfn ok call_ms<150 total_ms>=300 %s\n", total_ms >= 300 ? "yes" : "no");
    return 0;
}
