// f16/bf16 arithmetic, comparisons and conversions (half.test.ts): the kernel runs on the emulator, the same
// compute() runs on the host (nvcc-built executable) as the reference; the device-only fused ops get a host
// reference through an exact f64 fma rounded once.
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdio.h>
#define N 256
#include <math.h>
// Host reference for the device-only fused ops: the exact f64 fma of two halves rounds once to half.
#ifdef __CUDA_ARCH__
#define HFMA __hfma
#define HFMA2 __hfma2
#define HFMA2R __hfma2_relu
#else
static __half HFMA(__half a, __half b, __half c) { return __double2half(fma((double)__half2float(a), (double)__half2float(b), (double)__half2float(c))); }
static __nv_bfloat16 HFMA(__nv_bfloat16 a, __nv_bfloat16 b, __nv_bfloat16 c) { return __double2bfloat16(fma((double)__bfloat162float(a), (double)__bfloat162float(b), (double)__bfloat162float(c))); }
static __half2 HFMA2(__half2 a, __half2 b, __half2 c) { return __halves2half2(HFMA(__low2half(a), __low2half(b), __low2half(c)), HFMA(__high2half(a), __high2half(b), __high2half(c))); }
static __nv_bfloat162 HFMA2(__nv_bfloat162 a, __nv_bfloat162 b, __nv_bfloat162 c) { return __halves2bfloat162(HFMA(__low2bfloat16(a), __low2bfloat16(b), __low2bfloat16(c)), HFMA(__high2bfloat16(a), __high2bfloat16(b), __high2bfloat16(c))); }
template <class T> static T relu1(T x) { return __hlt(x, T(0.0f)) ? T(0.0f) : x; }
static __half2 HFMA2R(__half2 a, __half2 b, __half2 c) { __half2 r = HFMA2(a, b, c); return __halves2half2(relu1(__low2half(r)), relu1(__high2half(r))); }
static __nv_bfloat162 HFMA2R(__nv_bfloat162 a, __nv_bfloat162 b, __nv_bfloat162 c) { __nv_bfloat162 r = HFMA2(a, b, c); return __halves2bfloat162(relu1(__low2bfloat16(r)), relu1(__high2bfloat16(r))); }
#endif
__host__ __device__ void compute(int i, const float* in, unsigned short* o) {
  float fa = in[i], fb = in[(i * 7 + 3) % N], fc = in[(i * 13 + 5) % N];
  __half a = __float2half(fa), b = __float2half(fb), c = __float2half(fc);
  __half2 a2 = __floats2half2_rn(fa, fb), b2 = __floats2half2_rn(fc, fa), c2 = __halves2half2(b, c);
  __nv_bfloat16 x = __float2bfloat16(fa), y = __float2bfloat16(fb), z = __float2bfloat16(fc);
  __nv_bfloat162 x2 = __floats2bfloat162_rn(fa, fb), y2 = __floats2bfloat162_rn(fc, fa);
  int k = 0;
#define H(e) do { __half t_ = (e); o[k++] = *(unsigned short*)&t_; } while (0)
#define H2(e) do { __half2 t_ = (e); o[k++] = *(unsigned short*)&t_; o[k++] = ((unsigned short*)&t_)[1]; } while (0)
#define B(e) do { __nv_bfloat16 t_ = (e); o[k++] = *(unsigned short*)&t_; } while (0)
#define B2(e) do { __nv_bfloat162 t_ = (e); o[k++] = *(unsigned short*)&t_; o[k++] = ((unsigned short*)&t_)[1]; } while (0)
  H(HFMA(a, b, c)); H(__hmax_nan(a, b)); H(__hmin_nan(a, b)); H(__float2half_rz(fa * 3.1f)); H(__float2half_rd(fb * 3.1f)); H(__float2half_ru(fc * 3.1f));
  H2(HFMA2(a2, b2, c2)); H2(HFMA2R(a2, b2, c2)); H2(__hmax2_nan(a2, b2)); H2(__hmin2(a2, b2)); H2(__habs2(a2)); H2(__hadd2_sat(a2, b2));
  H2(__hgt2(a2, b2)); H2(__hle2(a2, c2)); H2(__hmul2(a2, c2));
  o[k++] = __hlt(a, b) + 2 * __hbgt2(a2, b2) + 4 * __hbeq2(a2, a2) + 8 * __hequ(a, c);
  o[k++] = (unsigned short)__half2int_rz(__hmul(a, __float2half(100.f)));
  B(HFMA(x, y, z)); B(__hmax_nan(x, y)); B(__hmin(x, y)); B(__float2bfloat16_rz(fa * 3.1f)); B(__float2bfloat16_rd(fb * 3.1f)); B(__int2bfloat16_rn(i * 1237));
  B2(HFMA2(x2, y2, x2)); B2(__hmax2(x2, y2)); B2(__hmul2(x2, y2)); B2(__hadd2(x2, y2)); B2(HFMA2R(x2, y2, x2));
  o[k++] = (unsigned short)__bfloat162int_rz(__hmul(x, __float2bfloat16(100.f))) + 3 * __hlt(x, y);
}
#define K 48
__global__ void kern(const float* in, unsigned short* o) { int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < N) compute(i, in, o + i * K); }
#ifndef NO_MAIN
int main() {
  static float in[N]; static unsigned short o[N * K];
  for (int i = 0; i < N; i++) fread(&in[i], 4, 1, stdin);
  for (int i = 0; i < N; i++) compute(i, in, o + i * K);
  fwrite(o, 2, N * K, stdout);
  return 0;
}
#endif
