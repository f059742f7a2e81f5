/* A driver-API program that finds the driver the way frameworks do: dlopen("libcuda.so.1") and dlsym,
 * then loads PTX text with cuModuleLoadData and launches it with cuLaunchKernel. */
#include <cuda.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

static const char *ptx =
    ".version 7.0\n"
    ".target sm_75\n"
    ".address_size 64\n"
    ".visible .entry saxpy(.param .u64 px, .param .u64 py, .param .f32 a, .param .u32 n)\n"
    "{\n"
    "  .reg .pred %p<2>; .reg .b32 %r<6>; .reg .f32 %f<5>; .reg .b64 %rd<8>;\n"
    "  ld.param.u64 %rd1, [px]; ld.param.u64 %rd2, [py]; ld.param.f32 %f1, [a]; ld.param.u32 %r1, [n];\n"
    "  mov.u32 %r2, %ctaid.x; mov.u32 %r3, %ntid.x; mov.u32 %r4, %tid.x; mad.lo.s32 %r5, %r2, %r3, %r4;\n"
    "  setp.ge.u32 %p1, %r5, %r1; @%p1 bra DONE;\n"
    "  cvta.to.global.u64 %rd3, %rd1; cvta.to.global.u64 %rd4, %rd2; mul.wide.u32 %rd5, %r5, 4;\n"
    "  add.s64 %rd6, %rd3, %rd5; add.s64 %rd7, %rd4, %rd5;\n"
    "  ld.global.f32 %f2, [%rd6]; ld.global.f32 %f3, [%rd7]; fma.rn.f32 %f4, %f1, %f2, %f3; st.global.f32 [%rd7], %f4;\n"
    "DONE:\n"
    "  ret;\n"
    "}\n";

#define LOAD(name) name##_t p##name = (name##_t)dlsym(lib, #name); if (!p##name) { fprintf(stderr, "no %s\n", #name); return 1; }
#define CK(x) do { CUresult r_ = (x); if (r_) { fprintf(stderr, "%s -> %d\n", #x, (int)r_); return 1; } } while (0)

typedef CUresult (*cuInit_t)(unsigned);
typedef CUresult (*cuDeviceGet_t)(CUdevice *, int);
typedef CUresult (*cuCtxCreate_v4_t)(CUcontext *, CUctxCreateParams *, unsigned, CUdevice);
typedef CUresult (*cuModuleLoadData_t)(CUmodule *, const void *);
typedef CUresult (*cuModuleGetFunction_t)(CUfunction *, CUmodule, const char *);
typedef CUresult (*cuMemAlloc_v2_t)(CUdeviceptr *, size_t);
typedef CUresult (*cuMemcpyHtoD_v2_t)(CUdeviceptr, const void *, size_t);
typedef CUresult (*cuMemcpyDtoH_v2_t)(void *, CUdeviceptr, size_t);
typedef CUresult (*cuLaunchKernel_t)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream, void **, void **);
typedef CUresult (*cuCtxDestroy_v2_t)(CUcontext);
typedef CUresult (*cuFuncGetParamInfo_t)(CUfunction, size_t, size_t *, size_t *);

int main(void)
{
    void *lib = dlopen("libcuda.so.1", RTLD_NOW);
    if (!lib) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
    LOAD(cuInit) LOAD(cuDeviceGet) LOAD(cuCtxCreate_v4) LOAD(cuModuleLoadData) LOAD(cuModuleGetFunction)
    LOAD(cuMemAlloc_v2) LOAD(cuMemcpyHtoD_v2) LOAD(cuMemcpyDtoH_v2) LOAD(cuLaunchKernel) LOAD(cuCtxDestroy_v2) LOAD(cuFuncGetParamInfo)
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction fn;
    CK(pcuInit(0));
    CK(pcuDeviceGet(&dev, 0));
    CK(pcuCtxCreate_v4(&ctx, NULL, 0, dev));
    CK(pcuModuleLoadData(&mod, ptx));
    CK(pcuModuleGetFunction(&fn, mod, "saxpy"));
    size_t off = 0, size = 0;
    CK(pcuFuncGetParamInfo(fn, 2, &off, &size));
    if (off != 16 || size != 4) { fprintf(stderr, "param 2 at %zu size %zu\n", off, size); return 1; }
    enum { N = 3000 };
    static float x[N], y[N];
    for (int i = 0; i < N; i++) { x[i] = i; y[i] = 1; }
    CUdeviceptr dx, dy;
    CK(pcuMemAlloc_v2(&dx, sizeof(x)));
    CK(pcuMemAlloc_v2(&dy, sizeof(y)));
    CK(pcuMemcpyHtoD_v2(dx, x, sizeof(x)));
    CK(pcuMemcpyHtoD_v2(dy, y, sizeof(y)));
    float a = 2.5f;
    unsigned n = N;
    void *args[] = { &dx, &dy, &a, &n };
    CK(pcuLaunchKernel(fn, (N + 127) / 128, 1, 1, 128, 1, 1, 0, NULL, args, NULL));
    CK(pcuMemcpyDtoH_v2(y, dy, sizeof(y)));
    for (int i = 0; i < N; i++)
        if (y[i] != 2.5f * i + 1) { fprintf(stderr, "y[%d] = %f\n", i, y[i]); return 1; }
    CK(pcuCtxDestroy_v2(ctx));
    printf("saxpy ok y[100]=%g\n", y[100]);
    return 0;
}
