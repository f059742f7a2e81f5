typedef int (*op_t)(int, int);
__device__ __noinline__ int addf(int a, int b) { return a + b; }
__device__ __noinline__ int mulf(int a, int b) { return a * b; }
__device__ __noinline__ int subf(int a, int b) { return a - b; }
__device__ op_t table[3] = { addf, mulf, subf };
extern "C" __global__ void apply(const int* a, const int* b, const int* which, int* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  op_t f = table[which[i] % 3];
  out[i] = f(a[i], b[i]);
}
extern "C" __global__ void sw(const int* in, int* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  int v = in[i], r;
  switch (v & 7) {
    case 0: r = v * 3; break; case 1: r = v ^ 0x55; break; case 2: r = v - 100; break; case 3: r = v << 2; break;
    case 4: r = ~v; break; case 5: r = v / 3; break; case 6: r = v + 7; break; default: r = -v; break;
  }
  out[i] = r;
}
