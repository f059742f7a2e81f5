// Kernels the emulator tests run; each is checked against a CPU reference in kernels.test.ts.
#include <cstdio>
#include <cassert>

extern "C" __global__ void vadd(const float* a, const float* b, float* c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}

extern "C" __global__ void saxpy(int n, float a, const float* x, float* y) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) y[i] = a * x[i] + y[i];
}

#define TILE 16
extern "C" __global__ void matmul(const float* A, const float* B, float* C, int n) {
  __shared__ float As[TILE][TILE];
  __shared__ float Bs[TILE][TILE];
  int row = blockIdx.y * TILE + threadIdx.y, col = blockIdx.x * TILE + threadIdx.x;
  float acc = 0.0f;
  for (int t = 0; t < n / TILE; t++) {
    As[threadIdx.y][threadIdx.x] = A[row * n + t * TILE + threadIdx.x];
    Bs[threadIdx.y][threadIdx.x] = B[(t * TILE + threadIdx.y) * n + col];
    __syncthreads();
    for (int k = 0; k < TILE; k++) acc += As[threadIdx.y][k] * Bs[k][threadIdx.x];
    __syncthreads();
  }
  C[row * n + col] = acc;
}

extern "C" __global__ void histogram(const unsigned char* data, int n, unsigned int* bins) {
  __shared__ unsigned int local[256];
  for (int i = threadIdx.x; i < 256; i += blockDim.x) local[i] = 0;
  __syncthreads();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) atomicAdd(&local[data[i]], 1u);
  __syncthreads();
  for (int i = threadIdx.x; i < 256; i += blockDim.x) atomicAdd(&bins[i], local[i]);
}

extern "C" __global__ void atomics(unsigned long long* u64, float* f32, double* f64, int* i32, unsigned int* u32, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  atomicAdd(&u64[0], (unsigned long long)i * 0x100000001ull);
  atomicAdd(&f32[0], 0.5f);
  atomicAdd(&f64[0], 0.25);
  atomicMax(&i32[0], i * 7 - 100);
  atomicMin(&i32[1], i * 7 - 100);
  atomicInc(&u32[0], 9u);
  atomicDec(&u32[1], 5u);
  atomicExch(&i32[2], 42);
  atomicCAS(&i32[3], i, i + 1);
  atomicOr(&u32[2], 1u << (i & 31));
  atomicMax(&u64[1], (unsigned long long)i << 40);
  atomicAnd(&u32[3], ~(1u << (i & 31)));
  atomicXor(&u32[4], (unsigned)i);
}

__device__ float warpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffff, v, o);
  return v;
}
extern "C" __global__ void reduce(const float* in, float* out, int n) {
  __shared__ float partial[32];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  float v = i < n ? in[i] : 0.0f;
  v = warpSum(v);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < (blockDim.x + 31) / 32 ? partial[lane] : 0.0f;
    v = warpSum(v);
    if (lane == 0) out[blockIdx.x] = v;
  }
}

extern "C" __global__ void shuffles(const int* in, int* up, int* down, int* bfly, int* idx, int* sub) {
  int t = threadIdx.x;
  int v = in[t];
  up[t] = __shfl_up_sync(0xffffffff, v, 3);
  down[t] = __shfl_down_sync(0xffffffff, v, 5);
  bfly[t] = __shfl_xor_sync(0xffffffff, v, 6);
  idx[t] = __shfl_sync(0xffffffff, v, (t * 7) & 31);
  sub[t] = __shfl_down_sync(0xffffffff, v, 2, 8);
}

extern "C" __global__ void votes(const int* in, unsigned* ballot, int* all, int* any, unsigned* active) {
  int t = threadIdx.x;
  int p = in[t] > 0;
  ballot[t] = __ballot_sync(0xffffffff, p);
  all[t] = __all_sync(0xffffffff, p);
  any[t] = __any_sync(0xffffffff, p);
  if (t % 3 == 0) active[t] = __activemask();
}

extern "C" __global__ void hash64(const unsigned long long* in, unsigned long long* out, unsigned* hi, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  unsigned long long x = in[i];
  x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
  unsigned long long w = (unsigned long long)(unsigned)i * 0xdeadbeefu;
  out[i] = x + w + __umul64hi(x, 0x9e3779b97f4a7c15ull) + __brevll(x) + (unsigned long long)__popcll(x) + __clzll(x | 1);
  hi[i] = __umulhi((unsigned)x, 0x9e3779b9u) ^ __brev((unsigned)i) ^ (unsigned)__ffs(i) ^ __byte_perm((unsigned)x, i, 0x5140);
}

extern "C" __global__ void dmath(const double* in, double* out, long long* li, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  double x = in[i];
  out[i] = x * 3.0 + 1.0 / (x + 2.0) - sqrt(fabs(x)) + fma(x, x, -1.0) + (double)(long long)(x * 1e6) / 7.0;
  li[i] = (long long)(x * 1e12) / 3 - (long long)i * 1000000007ll % 97;
}

__device__ __noinline__ int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
extern "C" __global__ void misc(int* out, const float* fin, float* fout, int n) {
  int i = threadIdx.x;
  int local[16];
  for (int k = 0; k < 16; k++) local[k] = k * i;
  out[i] = fib(i % 12) + local[(i * 5) & 15];
  float f = fin[i];
  fout[i] = __fdividef(f, 3.0f) + rsqrtf(fabsf(f) + 1.0f) + __expf(f * 0.1f) + __logf(fabsf(f) + 1.0f) + __sinf(f) + __cosf(f)
            + (float)__float2int_rn(f * 2.5f) + (float)__float2int_rd(f) + (float)__float2uint_ru(fabsf(f)) + fminf(f, 1.0f) + fmaxf(f, -1.0f);
}

extern "C" __global__ void hello(int n, double d) {
  if (threadIdx.x < 2) printf("thread %d of %d: %5.2f %s %c %x %lld\n", threadIdx.x, n, d, "str", 'A' + threadIdx.x, 255, -5ll);
}

extern "C" __global__ void oob(float* p, long long off) { p[off] = 1.0f; }

extern "C" __global__ void checker(int v) { assert(v > 0); }

extern "C" __global__ void spin(volatile int* flag) { while (*flag == 0) { } }

// Generic pointers: the callee cannot know whether p is shared, local or global (cvta + generic ld/st).
__device__ __noinline__ void bump(float* p, float v) { *p += v; }
extern "C" __global__ void generic(float4* io, int* counts) {
  __shared__ float sh[64];
  float loc[2] = {1.0f, 2.0f};
  int t = threadIdx.x;
  float4 v = io[t];                        // ld.global.v4.f32
  sh[t] = v.x;
  bump(&sh[t], v.y);                       // generic -> shared
  bump(&loc[t & 1], v.z);                  // generic -> local
  bump(&io[t].w, 1.0f);                    // generic -> global
  __syncthreads();
  io[t] = make_float4(sh[t], loc[t & 1], sh[63 - t], io[t].w);  // st.global.v4.f32
  int c = __syncthreads_count(v.x > 10.0f);
  int all = __syncthreads_and(v.x >= 0.0f);
  int any = __syncthreads_or(v.x > 62.0f);
  unsigned same = __match_any_sync(0xffffffff, t / 8);
  if (t == 0) { counts[0] = c; counts[1] = all; counts[2] = any; }
  counts[3 + t] = same;
}

extern "C" __global__ void trapper(int v) { if (v) __trap(); }
