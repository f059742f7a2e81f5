// CUDA graphs by stream capture through the intercept: a capture with a memset, kernels on two streams
// (fork and join through events), a device copy, copies from and to host memory (read and written when the
// graph runs) and a host function, launched 100 times; a capture invalidated by work that cannot be
// captured; a graph launched into a capturing stream; an external event record as a node.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <cuda_runtime.h>

#define CHECK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); exit(1); } } while (0)
#define ASSERT(c, ...) do { if (!(c)) { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } } while (0)

__global__ void add_scalar(int *a, const int *x, int n) // a[i] += i + *x
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) a[i] += i + *x;
}

__global__ void set_twice(int *b, const int *a, int n) // b[i] = 2 * a[i]
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) b[i] = 2 * a[i];
}

__global__ void accumulate(long long *acc, const int *c, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) acc[i] += c[i];
}

// Each thread captures its own stream (thread-local mode) at the same time and launches its graph.
static void capture_in_thread(int *buf, int tag, int *ok)
{
    cudaStream_t st;
    *ok = 0;
    if (cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking) != cudaSuccess) return;
    int *one;
    if (cudaMalloc(&one, 4) != cudaSuccess || cudaMemcpy(one, &tag, 4, cudaMemcpyHostToDevice) != cudaSuccess) return;
    if (cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal) != cudaSuccess) return;
    cudaMemsetAsync(buf, 0, 64 * 4, st);
    for (int k = 0; k < 3; k++) add_scalar<<<1, 64, 0, st>>>(buf, one, 64);
    cudaGraph_t g;
    cudaGraphExec_t e;
    if (cudaStreamEndCapture(st, &g) != cudaSuccess || cudaGraphInstantiate(&e, g, 0) != cudaSuccess) return;
    for (int k = 0; k < 50; k++) if (cudaGraphLaunch(e, st) != cudaSuccess) return;
    int h[64];
    if (cudaMemcpyAsync(h, buf, sizeof(h), cudaMemcpyDeviceToHost, st) != cudaSuccess || cudaStreamSynchronize(st) != cudaSuccess) return;
    for (int i = 0; i < 64; i++) if (h[i] != 3 * (i + tag)) return;
    cudaGraphExecDestroy(e);
    cudaGraphDestroy(g);
    cudaStreamDestroy(st);
    cudaFree(one);
    *ok = 1;
}

static int host_calls;
static void CUDART_CB on_host(void *p) { host_calls++; *(int *)p += 1; }

int main()
{
    const int n = 1000, launches = 100;
    int *a, *b, *c, *x;
    long long *acc;
    CHECK(cudaMalloc(&a, n * 4));
    CHECK(cudaMalloc(&b, n * 4));
    CHECK(cudaMalloc(&c, n * 4));
    CHECK(cudaMalloc(&x, 4));
    CHECK(cudaMalloc(&acc, n * 8));
    CHECK(cudaMemset(acc, 0, n * 8));
    int *hx, *hlast;
    CHECK(cudaMallocHost(&hx, 4));
    CHECK(cudaMallocHost(&hlast, n * 4));
    cudaStream_t s, side;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CHECK(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking));
    cudaEvent_t fork, join;
    CHECK(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
    CHECK(cudaEventCreateWithFlags(&join, cudaEventDisableTiming));
    CHECK(cudaDeviceSynchronize());

    int counter = 0;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    cudaStreamCaptureStatus st;
    unsigned long long id = 0;
    CHECK(cudaStreamGetCaptureInfo(s, &st, &id));
    ASSERT(st == cudaStreamCaptureStatusActive && id != 0, "capture status %d id %llu", (int)st, id);
    CHECK(cudaMemsetAsync(a, 0, n * 4, s));
    CHECK(cudaMemcpyAsync(x, hx, 4, cudaMemcpyHostToDevice, s));      // reads *hx when the graph runs
    add_scalar<<<(n + 255) / 256, 256, 0, s>>>(a, x, n);
    CHECK(cudaEventRecord(fork, s));
    CHECK(cudaStreamWaitEvent(side, fork, 0));                        // side joins the capture
    CHECK(cudaStreamIsCapturing(side, &st));
    ASSERT(st == cudaStreamCaptureStatusActive, "the side stream did not join the capture");
    set_twice<<<(n + 255) / 256, 256, 0, side>>>(b, a, n);
    CHECK(cudaEventRecord(join, side));
    CHECK(cudaStreamWaitEvent(s, join, 0));
    CHECK(cudaMemcpyAsync(c, b, n * 4, cudaMemcpyDeviceToDevice, s));
    accumulate<<<(n + 255) / 256, 256, 0, s>>>(acc, c, n);
    CHECK(cudaMemcpyAsync(hlast, c, n * 4, cudaMemcpyDeviceToHost, s)); // writes hlast when the graph runs
    CHECK(cudaLaunchHostFunc(s, on_host, &counter));
    cudaGraph_t graph;
    CHECK(cudaStreamEndCapture(s, &graph));
    CHECK(cudaStreamIsCapturing(side, &st));
    ASSERT(st == cudaStreamCaptureStatusNone, "the side stream still captures");
    ASSERT(host_calls == 0, "the host function ran during capture");
    size_t nodes = 0;
    CHECK(cudaGraphGetNodes(graph, NULL, &nodes));
    ASSERT(nodes == 8, "%zu nodes captured, expected 8", nodes);

    cudaGraphExec_t exec;
    CHECK(cudaGraphInstantiate(&exec, graph, 0));
    CHECK(cudaGraphDestroy(graph)); // the executable keeps what it needs
    long long want0 = 0;            // acc[7] after all launches: sum over k of 2 * (7 + k)
    for (int k = 0; k < launches; k++) {
        *hx = k;
        CHECK(cudaGraphLaunch(exec, s));
        // the host copy of x must have left before hx changes: wait for this launch on every 10th round,
        // which also checks that the device-to-host node lands
        if (k % 10 == 9) {
            CHECK(cudaStreamSynchronize(s));
            ASSERT(hlast[5] == 2 * (5 + k), "launch %d: hlast[5]=%d, expected %d", k, hlast[5], 2 * (5 + k));
        }
        want0 += 2 * (7 + k);
    }
    CHECK(cudaStreamSynchronize(s));
    ASSERT(counter == launches && host_calls == launches, "host function ran %d times, expected %d", counter, launches);
    long long h[n];
    CHECK(cudaMemcpy(h, acc, n * 8, cudaMemcpyDeviceToHost));
    ASSERT(h[7] == want0, "acc[7]=%lld, expected %lld", h[7], want0);
    for (int i = 0; i < n; i++) {
        long long w = 0;
        for (int k = 0; k < launches; k++) w += 2 * (i + k);
        ASSERT(h[i] == w, "acc[%d]=%lld, expected %lld", i, h[i], w);
    }

    // a graph launched into a capturing stream is captured into the new graph
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
    CHECK(cudaGraphLaunch(exec, s));
    CHECK(cudaGraphLaunch(exec, s));
    cudaGraph_t twice;
    CHECK(cudaStreamEndCapture(s, &twice));
    CHECK(cudaGraphGetNodes(twice, NULL, &nodes));
    ASSERT(nodes == 16, "nested capture has %zu nodes, expected 16", nodes);
    cudaGraphExec_t exec2;
    CHECK(cudaGraphInstantiate(&exec2, twice, 0));
    CHECK(cudaMemset(acc, 0, n * 8));
    *hx = 1000;
    CHECK(cudaGraphLaunch(exec2, s));
    CHECK(cudaStreamSynchronize(s));
    CHECK(cudaMemcpy(h, acc, n * 8, cudaMemcpyDeviceToHost));
    ASSERT(h[3] == 4 * (3 + 1000), "nested graph: acc[3]=%lld", h[3]);
    ASSERT(counter == launches + 2, "nested graph: host function ran %d times", counter - launches);

    // work that cannot be captured invalidates the capture; the stream is usable afterwards
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    add_scalar<<<1, 32, 0, s>>>(a, x, 32);
    void *p = NULL;
    ASSERT(cudaMallocAsync(&p, 256, s) != cudaSuccess, "cudaMallocAsync during capture succeeded");
    cudaGraph_t bad = NULL;
    cudaError_t e = cudaStreamEndCapture(s, &bad);
    ASSERT(e == cudaErrorStreamCaptureInvalidated && bad == NULL, "end of an invalidated capture: %s", cudaGetErrorName(e));
    cudaGetLastError();
    ASSERT(cudaStreamBeginCapture(0, cudaStreamCaptureModeGlobal) != cudaSuccess, "capturing the legacy stream succeeded");
    cudaGetLastError();
    CHECK(cudaMemsetAsync(a, 0, 16, s));
    CHECK(cudaStreamSynchronize(s));

    // two threads capturing and launching at once
    int *tb[2], tok[2];
    CHECK(cudaMalloc(&tb[0], 64 * 4));
    CHECK(cudaMalloc(&tb[1], 64 * 4));
    std::thread th0(capture_in_thread, tb[0], 5, &tok[0]), th1(capture_in_thread, tb[1], 9, &tok[1]);
    th0.join();
    th1.join();
    ASSERT(tok[0] && tok[1], "concurrent captures: thread results %d %d", tok[0], tok[1]);

    // an external event record is a node: the graph records the event each time it runs
    cudaEvent_t t0, ext;
    CHECK(cudaEventCreate(&t0));
    CHECK(cudaEventCreate(&ext));
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    add_scalar<<<1, 32, 0, s>>>(a, x, 32);
    CHECK(cudaEventRecordWithFlags(ext, s, cudaEventRecordExternal));
    cudaGraph_t ge;
    CHECK(cudaStreamEndCapture(s, &ge));
    CHECK(cudaGraphGetNodes(ge, NULL, &nodes));
    ASSERT(nodes == 2, "external record: %zu nodes, expected 2", nodes);
    cudaGraphExec_t exec3;
    CHECK(cudaGraphInstantiate(&exec3, ge, 0));
    CHECK(cudaEventRecord(t0, s));
    CHECK(cudaGraphLaunch(exec3, s));
    CHECK(cudaStreamSynchronize(s));
    float ms = -1;
    CHECK(cudaEventElapsedTime(&ms, t0, ext));
    ASSERT(ms >= 0, "elapsed to the graph's event %f", ms);
    CHECK(cudaGraphExecDestroy(exec3));
    CHECK(cudaGraphDestroy(ge));

    CHECK(cudaGraphExecDestroy(exec));
    CHECK(cudaGraphExecDestroy(exec2));
    CHECK(cudaGraphDestroy(twice));
    printf("graphs ok launches=%d nodes=8 acc[7]=%lld\n", launches, want0);
    return 0;
}
