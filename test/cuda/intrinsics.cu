// Integer and half-precision intrinsics that nvcc emits as single PTX instructions (dp4a, dp2a, sad, fns,
// atom.add.noftz.{f16,bf16,f16x2,bf16x2}, and the CUDA headers' hand-written inline asm: h2exp, half shuffles),
// checked against host references written from the PTX ISA's definitions. The second launch is large enough
// to be split across the emulator's block workers, so the half-precision atomics take their compare-exchange
// path there.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_fp16.h>
#include <cuda_bf16.h>

#define CHECK(x) do { cudaError_t err_ = (x); if (err_ != cudaSuccess) { fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(err_)); exit(1); } } while (0)

__global__ void ints(const unsigned *a, const unsigned *b, int *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  unsigned x = a[i], y = b[i];
  out[i * 8 + 0] = __dp4a((int)x, (int)y, i);
  out[i * 8 + 1] = (int)__dp4a(x, y, (unsigned)i);
  out[i * 8 + 2] = __dp2a_lo((int)x, (int)y, i);
  out[i * 8 + 3] = (int)__dp2a_hi(x, y, (unsigned)i);
  out[i * 8 + 4] = (int)__sad((int)x, (int)y, (unsigned)i);
  out[i * 8 + 5] = (int)__usad(x, y, (unsigned)i);
  out[i * 8 + 6] = (int)__fns(x, i % 32, (int)(y % 7) - 3);
  out[i * 8 + 7] = (int)__fns(x, (i * 7) % 32, 0);
}

__global__ void halves(__half2 *h2, __nv_bfloat162 *b2, __half *h, __nv_bfloat16 *b, __half2 *e) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i % 16 == 0) atomicAdd(h2, __halves2half2(__float2half(1.0f), __float2half(0.5f)));
  if (i % 64 == 0) atomicAdd(b2, __floats2bfloat162_rn(1.0f, 0.5f));
  if (i % 16 < 2) atomicAdd(h + (i & 1), __float2half(1.0f));
  if (i % 128 < 2) atomicAdd(b + (i & 1), __float2bfloat16(1.0f));
  if (i < 64) e[i] = h2exp(__floats2half2_rn(i / 16.0f - 2.0f, 1.0f));
}

// cuda_fp16's shuffles on halves move PTX's predefined WARP_SZ in inline asm.
__global__ void halfShuffles(__half *h, __half2 *h2) {
  int i = threadIdx.x;
  __half x = __int2half_rn(i);
  __half2 y = __halves2half2(__int2half_rn(i), __int2half_rn(-i));
  h[i] = __shfl_xor_sync(0xffffffff, x, 1);
  h2[i] = __shfl_down_sync(0xffffffff, y, 2, 16);
}

static int sx8(unsigned v, int k) { return (int)(signed char)(v >> (8 * k)); }
static int ux8(unsigned v, int k) { return (int)((v >> (8 * k)) & 255); }

static int ref(int which, unsigned x, unsigned y, int i) {
  long long r;
  switch (which) {
    case 0: r = i; for (int k = 0; k < 4; k++) r += (long long)sx8(x, k) * sx8(y, k); return (int)(unsigned)r;
    case 1: r = (unsigned)i; for (int k = 0; k < 4; k++) r += (long long)ux8(x, k) * ux8(y, k); return (int)(unsigned)r;
    case 2: r = i + (long long)(short)(x & 0xffff) * sx8(y, 0) + (long long)(short)(x >> 16) * sx8(y, 1); return (int)(unsigned)r;
    case 3: r = (unsigned)i + (long long)(x & 0xffff) * ux8(y, 2) + (long long)(x >> 16) * ux8(y, 3); return (int)(unsigned)r;
    case 4: r = (long long)(unsigned)i + llabs((long long)(int)x - (int)y); return (int)(unsigned)r;
    case 5: r = (long long)(unsigned)i + llabs((long long)x - (long long)y); return (int)(unsigned)r;
    case 6: case 7: {
      int base = which == 6 ? i % 32 : (i * 7) % 32, offset = which == 6 ? (int)(y % 7) - 3 : 0;
      if (offset == 0) return (x >> base) & 1 ? base : -1;
      int inc = offset > 0 ? 1 : -1, count = abs(offset) - 1;
      for (int pos = base; pos >= 0 && pos < 32; pos += inc)
        if ((x >> pos) & 1) { if (count == 0) return pos; count--; }
      return -1;
    }
  }
  return 0;
}

int main() {
  const int n = 4096;
  unsigned *ha = (unsigned *)malloc(n * 4), *hb = (unsigned *)malloc(n * 4);
  unsigned s = 12345;
  for (int i = 0; i < n; i++) { s = s * 1103515245u + 12345u; ha[i] = s; s = s * 1103515245u + 12345u; hb[i] = s; }
  ha[0] = 0; hb[0] = 0xffffffffu; ha[1] = 0x80808080u; hb[1] = 0x7f7f7f7fu;
  unsigned *da, *db; int *dout;
  CHECK(cudaMalloc(&da, n * 4)); CHECK(cudaMalloc(&db, n * 4)); CHECK(cudaMalloc(&dout, n * 32));
  CHECK(cudaMemcpy(da, ha, n * 4, cudaMemcpyHostToDevice)); CHECK(cudaMemcpy(db, hb, n * 4, cudaMemcpyHostToDevice));
  ints<<<n / 128, 128>>>(da, db, dout, n);
  CHECK(cudaGetLastError());
  int *out = (int *)malloc(n * 32);
  CHECK(cudaMemcpy(out, dout, n * 32, cudaMemcpyDeviceToHost));
  int bad = 0;
  for (int i = 0; i < n; i++)
    for (int w = 0; w < 8; w++)
      if (out[i * 8 + w] != ref(w, ha[i], hb[i], i) && bad++ < 5)
        printf("intrinsic %d, element %d (a=%08x b=%08x): got %d, want %d\n", w, i, ha[i], hb[i], out[i * 8 + w], ref(w, ha[i], hb[i], i));

  // 64 blocks of 256 threads (enough to be split across block workers); every sum stays exact (f16 holds
  // integers to 2048, bf16 to 256).
  __half2 *h2; __nv_bfloat162 *b2; __half *h; __nv_bfloat16 *b; __half2 *e;
  CHECK(cudaMalloc(&h2, 4)); CHECK(cudaMalloc(&b2, 4)); CHECK(cudaMalloc(&h, 4)); CHECK(cudaMalloc(&b, 4)); CHECK(cudaMalloc(&e, 256));
  CHECK(cudaMemset(h2, 0, 4)); CHECK(cudaMemset(b2, 0, 4)); CHECK(cudaMemset(h, 0, 4)); CHECK(cudaMemset(b, 0, 4));
  halves<<<64, 256>>>(h2, b2, h, b, e);
  CHECK(cudaGetLastError());
  __half2 rh2; __nv_bfloat162 rb2; __half rh[2]; __nv_bfloat16 rb[2]; __half2 re[64];
  CHECK(cudaMemcpy(&rh2, h2, 4, cudaMemcpyDeviceToHost)); CHECK(cudaMemcpy(&rb2, b2, 4, cudaMemcpyDeviceToHost));
  CHECK(cudaMemcpy(rh, h, 4, cudaMemcpyDeviceToHost)); CHECK(cudaMemcpy(rb, b, 4, cudaMemcpyDeviceToHost));
  CHECK(cudaMemcpy(re, e, 256, cudaMemcpyDeviceToHost));
  float got[8] = { __low2float(rh2), __high2float(rh2), __low2float(rb2), __high2float(rb2), __half2float(rh[0]), __half2float(rh[1]), __bfloat162float(rb[0]), __bfloat162float(rb[1]) };
  float want[8] = { 1024, 512, 256, 128, 1024, 1024, 128, 128 };
  for (int k = 0; k < 8; k++) if (got[k] != want[k] && bad++ < 10) printf("half atomic %d: got %g, want %g\n", k, got[k], want[k]);
  for (int i = 0; i < 64; i++) {
    float x = i / 16.0f - 2.0f, lo = __low2float(re[i]), hi = __high2float(re[i]), w = expf(x), e1 = expf(1.0f);
    // h2exp (e^x, by ex2.approx in the headers' inline asm): within 2 f16 ulps of the exact value.
    if ((fabsf(lo - w) > 2 * w / 1024 || fabsf(hi - e1) > 2 * e1 / 1024) && bad++ < 15) printf("h2exp(%g): got %g/%g, want %g/%g\n", x, lo, hi, w, e1);
  }
  __half *sh; __half2 *sh2; __half rs[32]; __half2 rs2[32];
  CHECK(cudaMalloc(&sh, 64)); CHECK(cudaMalloc(&sh2, 128));
  halfShuffles<<<1, 32>>>(sh, sh2);
  CHECK(cudaGetLastError());
  CHECK(cudaMemcpy(rs, sh, 64, cudaMemcpyDeviceToHost)); CHECK(cudaMemcpy(rs2, sh2, 128, cudaMemcpyDeviceToHost));
  for (int i = 0; i < 32; i++) {
    int src = (i % 16) + 2 < 16 ? i + 2 : i;   // shfl.down within 16-lane segments keeps a lane's own value past the end
    if ((__half2float(rs[i]) != (float)(i ^ 1) || __low2float(rs2[i]) != (float)src || __high2float(rs2[i]) != (float)-src) && bad++ < 20)
      printf("half shuffle lane %d: %g %g/%g\n", i, __half2float(rs[i]), __low2float(rs2[i]), __high2float(rs2[i]));
  }
  if (bad) { printf("intrinsics: %d mismatches\n", bad); return 1; }
  printf("intrinsics ok\n");
  return 0;
}
