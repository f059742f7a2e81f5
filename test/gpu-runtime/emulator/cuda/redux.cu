// sm_80 warp reductions (redux.sync) and half-precision arithmetic; compiled with -arch=sm_80.
extern "C" __global__ void redux(const int* in, int* out) {
  int t = threadIdx.x;
  unsigned v = (unsigned)in[t];
  out[t * 4 + 0] = __reduce_add_sync(0xffffffff, v);
  out[t * 4 + 1] = __reduce_min_sync(0xffffffff, (int)v);
  out[t * 4 + 2] = __reduce_max_sync(0xffffffff, v);
  out[t * 4 + 3] = __reduce_xor_sync(0xffffffff, v);
}

#include <cuda_fp16.h>
extern "C" __global__ void halves(const __half* a, const __half* b, __half* c, float* f, int n) {
  int i = threadIdx.x;
  if (i >= n) return;
  __half x = __hadd(a[i], b[i]);
  x = __hmul(x, b[i]);
  x = __hfma(x, a[i], b[i]);
  c[i] = x;
  f[i] = __half2float(x) + (__hlt(a[i], b[i]) ? 1000.0f : 0.0f);
}
