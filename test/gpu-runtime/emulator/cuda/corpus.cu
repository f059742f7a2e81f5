// Proof corpus: classic CUDA kernels (scans, sorts, transposes, stencil, Mandelbrot, Black-Scholes, FFT,
// recursion) run on the emulator and checked against CPU references in corpus.test.ts. Compiled with
// -fmad=false so float results can be reproduced bit-exactly with Math.fround per operation.

// Blelloch work-efficient exclusive scan of 2*blockDim.x ints in one block.
extern "C" __global__ void blelloch_scan(const int* in, int* out, int n) {
  extern __shared__ int t[];
  int tid = threadIdx.x;
  t[2 * tid] = in[2 * tid];
  t[2 * tid + 1] = in[2 * tid + 1];
  int offset = 1;
  for (int d = n >> 1; d > 0; d >>= 1) {
    __syncthreads();
    if (tid < d) {
      int ai = offset * (2 * tid + 1) - 1, bi = offset * (2 * tid + 2) - 1;
      t[bi] += t[ai];
    }
    offset <<= 1;
  }
  if (tid == 0) t[n - 1] = 0;
  for (int d = 1; d < n; d <<= 1) {
    offset >>= 1;
    __syncthreads();
    if (tid < d) {
      int ai = offset * (2 * tid + 1) - 1, bi = offset * (2 * tid + 2) - 1;
      int v = t[ai];
      t[ai] = t[bi];
      t[bi] += v;
    }
  }
  __syncthreads();
  out[2 * tid] = t[2 * tid];
  out[2 * tid + 1] = t[2 * tid + 1];
}

// Inclusive scan per block: shuffle scan within warps, then a shuffle scan of the warp totals.
extern "C" __global__ void warp_scan(const int* in, int* out, int n) {
  __shared__ int warpTotals[32];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int v = i < n ? in[i] : 0;
  for (int o = 1; o < 32; o <<= 1) {
    int u = __shfl_up_sync(0xffffffff, v, o);
    if (lane >= o) v += u;
  }
  if (lane == 31) warpTotals[warp] = v;
  __syncthreads();
  if (warp == 0) {
    int w = lane < (blockDim.x >> 5) ? warpTotals[lane] : 0;
    for (int o = 1; o < 32; o <<= 1) {
      int u = __shfl_up_sync(0xffffffff, w, o);
      if (lane >= o) w += u;
    }
    warpTotals[lane] = w;
  }
  __syncthreads();
  if (warp > 0) v += warpTotals[warp - 1];
  if (i < n) out[i] = v;
}

// Bitonic sort of n (power of two) ints in shared memory, one block.
extern "C" __global__ void bitonic_sort(int* data, int n) {
  extern __shared__ int s[];
  for (int i = threadIdx.x; i < n; i += blockDim.x) s[i] = data[i];
  __syncthreads();
  for (int k = 2; k <= n; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int i = threadIdx.x; i < n; i += blockDim.x) {
        int ixj = i ^ j;
        if (ixj > i) {
          int a = s[i], b = s[ixj];
          bool up = (i & k) == 0;
          if ((a > b) == up) { s[i] = b; s[ixj] = a; }
        }
      }
      __syncthreads();
    }
  }
  for (int i = threadIdx.x; i < n; i += blockDim.x) data[i] = s[i];
}

// Bottom-up merge sort of n ints, one block; each thread merges whole run pairs between two shared buffers.
extern "C" __global__ void merge_sort(int* data, int n) {
  extern __shared__ int s[];
  int* src = s;
  int* dst = s + n;
  for (int i = threadIdx.x; i < n; i += blockDim.x) src[i] = data[i];
  __syncthreads();
  for (int width = 1; width < n; width <<= 1) {
    for (int lo = threadIdx.x * 2 * width; lo < n; lo += blockDim.x * 2 * width) {
      int mid = min(lo + width, n), hi = min(lo + 2 * width, n);
      int a = lo, b = mid, o = lo;
      while (a < mid && b < hi) dst[o++] = src[a] <= src[b] ? src[a++] : src[b++];
      while (a < mid) dst[o++] = src[a++];
      while (b < hi) dst[o++] = src[b++];
    }
    __syncthreads();
    int* t = src; src = dst; dst = t;
  }
  for (int i = threadIdx.x; i < n; i += blockDim.x) data[i] = src[i];
}

extern "C" __global__ void transpose_naive(const float* in, float* out, int w, int h) {
  int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x < w && y < h) out[x * h + y] = in[y * w + x];
}

// Tiled transpose with a 32x33 tile (padding avoids bank conflicts); block is 32x8, each thread moves 4 rows.
#define TDIM 32
#define TROWS 8
extern "C" __global__ void transpose_tiled(const float* in, float* out, int w, int h) {
  __shared__ float tile[TDIM][TDIM + 1];
  int x = blockIdx.x * TDIM + threadIdx.x, y = blockIdx.y * TDIM + threadIdx.y;
  for (int j = 0; j < TDIM; j += TROWS)
    if (x < w && y + j < h) tile[threadIdx.y + j][threadIdx.x] = in[(y + j) * w + x];
  __syncthreads();
  x = blockIdx.y * TDIM + threadIdx.x;
  y = blockIdx.x * TDIM + threadIdx.y;
  for (int j = 0; j < TDIM; j += TROWS)
    if (x < h && y + j < w) out[(y + j) * h + x] = tile[threadIdx.x][threadIdx.y + j];
}

// One Jacobi sweep of the 5-point Laplace stencil; the boundary is held fixed.
extern "C" __global__ void jacobi(const float* in, float* out, int w, int h) {
  int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= w || y >= h) return;
  int i = y * w + x;
  if (x == 0 || y == 0 || x == w - 1 || y == h - 1) { out[i] = in[i]; return; }
  out[i] = 0.25f * (in[i - 1] + in[i + 1] + in[i - w] + in[i + w]);
}

extern "C" __global__ void mandelbrot(int* out, int w, int h, float x0, float y0, float dx, float dy, int maxIter) {
  int px = blockIdx.x * blockDim.x + threadIdx.x, py = blockIdx.y * blockDim.y + threadIdx.y;
  if (px >= w || py >= h) return;
  float cx = x0 + px * dx, cy = y0 + py * dy;
  float x = 0.0f, y = 0.0f;
  int it = 0;
  while (it < maxIter && x * x + y * y <= 4.0f) {
    float xt = x * x - y * y + cx;
    y = 2.0f * x * y + cy;
    x = xt;
    it++;
  }
  out[py * w + px] = it;
}

__device__ float cnd(float d) {
  const float A1 = 0.31938153f, A2 = -0.356563782f, A3 = 1.781477937f, A4 = -1.821255978f, A5 = 1.330274429f;
  const float RSQRT2PI = 0.39894228040143267793994605993438f;
  float K = 1.0f / (1.0f + 0.2316419f * fabsf(d));
  float c = RSQRT2PI * expf(-0.5f * d * d) * (K * (A1 + K * (A2 + K * (A3 + K * (A4 + K * A5)))));
  return d > 0 ? 1.0f - c : c;
}

extern "C" __global__ void black_scholes(float* call, float* put, const float* S, const float* X, const float* T,
                                         float r, float v, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float s = S[i], x = X[i], t = T[i];
  float sqrtT = sqrtf(t);
  float d1 = (logf(s / x) + (r + 0.5f * v * v) * t) / (v * sqrtT);
  float d2 = d1 - v * sqrtT;
  float expRT = expf(-r * t);
  call[i] = s * cnd(d1) - x * expRT * cnd(d2);
  put[i] = x * expRT * (1.0f - cnd(d2)) - s * (1.0f - cnd(d1));
}

// Iterative radix-2 decimation-in-time FFT of n complex floats (interleaved re, im) in shared memory;
// n/2 threads, one butterfly each per stage.
extern "C" __global__ void fft_radix2(const float2* in, float2* out, int n, int logn) {
  extern __shared__ float2 buf[];
  for (int i = threadIdx.x; i < n; i += blockDim.x) buf[__brev(i) >> (32 - logn)] = in[i];
  __syncthreads();
  for (int half = 1; half < n; half <<= 1) {
    int k = threadIdx.x;
    int j = k & (half - 1);
    int a = (k / half) * 2 * half + j, b = a + half;
    float sn, cs;
    sincosf(-3.14159265358979f * j / half, &sn, &cs);
    float2 u = buf[a], v = buf[b];
    float vr = v.x * cs - v.y * sn, vi = v.x * sn + v.y * cs;
    buf[a] = make_float2(u.x + vr, u.y + vi);
    buf[b] = make_float2(u.x - vr, u.y - vi);
    __syncthreads();
  }
  for (int i = threadIdx.x; i < n; i += blockDim.x) out[i] = buf[i];
}

// Genuine recursion (noinline keeps the call in PTX): naive Fibonacci and divide-and-conquer array sum.
__device__ __noinline__ int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
__device__ __noinline__ int rsum(const int* a, int lo, int hi) {
  if (hi - lo == 1) return a[lo];
  int mid = (lo + hi) / 2;
  return rsum(a, lo, mid) + rsum(a, mid, hi);
}
extern "C" __global__ void recursion(const int* a, int* fibOut, int* sumOut, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  fibOut[i] = fib(i % 16);
  sumOut[i] = rsum(a, 0, i + 1);
}
