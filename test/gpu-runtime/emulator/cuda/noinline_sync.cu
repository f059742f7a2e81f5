// Barriers and warp shuffles inside __noinline__ device functions (nvcc keeps them as .func + call).
__device__ __noinline__ int warpSum(int v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}
__device__ __noinline__ int blockSum(int v, int* scratch) {
  int w = warpSum(v);
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = w;
  __syncthreads();
  int t = 0;
  if (threadIdx.x == 0) for (int i = 0; i < (int)(blockDim.x >> 5); i++) t += scratch[i];
  __syncthreads();
  return t;
}
extern "C" __global__ void sums(const int* in, int* out) {
  __shared__ int scratch[32];
  int a = in[blockIdx.x * blockDim.x + threadIdx.x];
  int s1 = blockSum(a, scratch);
  int s2 = blockSum(a * a, scratch);
  if (threadIdx.x == 0) { out[2 * blockIdx.x] = s1; out[2 * blockIdx.x + 1] = s2; }
}
