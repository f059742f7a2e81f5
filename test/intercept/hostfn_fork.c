/* Host functions against the server with its FakeBackend: the helper thread appears with the first host
 * function only; a function still runs when its stream is destroyed right after queueing it; a forked child
 * does not inherit the helper (one thread) and starts its own when it queues a function, nor the parent's
 * kernels; both exit cleanly.
 * Prints "hostfn-fork ok". */
#define _GNU_SOURCE
#include <cuda.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(call) do { CUresult r_ = (call); if (r_ != CUDA_SUCCESS) { \
    fprintf(stderr, "%s:%d: %s -> %d\n", __FILE__, __LINE__, #call, (int)r_); exit(1); } } while (0)
#define ASSERT(c, ...) do { if (!(c)) { fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); exit(1); } } while (0)

static const char *image = ".entry fill_u32(.param .u64 p, .param .u32 v, .param .u32 n)\n";

static int threads(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static volatile int ran;
static void CUDA_CB mark(void *p) { usleep(100 * 1000); ran += *(int *)p; }

static CUfunction open_session(void)
{
    CUcontext ctx;
    CUmodule mod;
    CUfunction f;
    CHECK(cuInit(0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, 0));
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuModuleLoadData(&mod, image));
    CHECK(cuModuleGetFunction(&f, mod, "fill_u32"));
    return f;
}

int main(void)
{
    CUfunction f = open_session();
    int base = threads();
    CUstream s;
    CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CUdeviceptr d;
    CHECK(cuMemAlloc(&d, 128));
    unsigned v = 7, n = 32;
    void *args[] = { &d, &v, &n };
    ASSERT(threads() == base, "a thread started before any host function");
    CHECK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, s, args, NULL));
    int one = 1;
    CHECK(cuLaunchHostFunc(s, mark, &one));
    CHECK(cuStreamDestroy(s)); /* the queued function still runs */
    ASSERT(threads() == base + 1, "%d threads after the first host function, %d before", threads(), base);
    CHECK(cuCtxSynchronize());
    ASSERT(ran == 1, "the host function of a destroyed stream ran %d times", ran);

    pid_t pid = fork();
    if (pid == 0) {
        if (threads() != 1) _exit(10);          /* the helper is not inherited */
        CUfunction mine = open_session();       /* a fresh session for the child */
        CUdeviceptr cd;
        if (cuMemAlloc(&cd, 128) != CUDA_SUCCESS) _exit(14);
        void *cargs[] = { &cd, &v, &n };
        /* the parent's kernel handle was never loaded into the child's session */
        if (cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, cargs, NULL) != CUDA_ERROR_INVALID_HANDLE) _exit(15);
        if (cuLaunchKernel(mine, 1, 1, 1, 32, 1, 1, 0, NULL, cargs, NULL) != CUDA_SUCCESS) _exit(16);
        int ten = 10;
        if (cuLaunchHostFunc(NULL, mark, &ten) != CUDA_SUCCESS) _exit(11);
        if (threads() != 2) _exit(12);          /* the child's own helper */
        if (cuCtxSynchronize() != CUDA_SUCCESS || ran != 11) _exit(13);
        exit(0);                                /* the helper is joined at exit */
    }
    int st = 0;
    waitpid(pid, &st, 0);
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -st);
    int hundred = 100;
    CHECK(cuLaunchHostFunc(NULL, mark, &hundred));
    CHECK(cuCtxSynchronize());
    ASSERT(ran == 101, "parent after fork: %d", ran);
    unsigned h[32];
    CHECK(cuMemcpyDtoH(h, d, 128));
    ASSERT(h[31] == 7, "kernel before the host function: %u", h[31]);
    printf("hostfn-fork ok\n");
    return 0;
}
