// A grid-wide reduction with cooperative groups: every block writes a partial sum, the grid synchronises,
// then block 0 adds the partials. Launched with cudaLaunchCooperativeKernel, it needs every block resident at
// once; a grid larger than the device can hold must be refused with cudaErrorCooperativeLaunchTooLarge.
#include <cooperative_groups.h>
#include <cstdio>
#include <vector>
namespace cg = cooperative_groups;

__global__ void gridSum(const int *in, int *partial, int *out, int n) {
  cg::grid_group grid = cg::this_grid();
  __shared__ int s[128];
  int sum = 0;
  for (int i = grid.thread_rank(); i < n; i += grid.size()) sum += in[i];
  s[threadIdx.x] = sum;
  __syncthreads();
  for (int k = blockDim.x / 2; k > 0; k >>= 1) {
    if (threadIdx.x < k) s[threadIdx.x] += s[threadIdx.x + k];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = s[0];
  grid.sync();
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    int t = 0;
    for (int b = 0; b < gridDim.x; b++) t += partial[b];
    *out = t;
  }
}

#define CHECK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e)); return 1; } } while (0)

int main() {
  const int n = 10000, blocks = 8, threads = 128;
  std::vector<int> h(n);
  long want = 0;
  for (int i = 0; i < n; i++) { h[i] = (i * 7) % 13 - 6; want += h[i]; }
  int *in, *partial, *out;
  CHECK(cudaMalloc(&in, n * sizeof(int)));
  CHECK(cudaMalloc(&partial, blocks * sizeof(int)));
  CHECK(cudaMalloc(&out, sizeof(int)));
  CHECK(cudaMemcpy(in, h.data(), n * sizeof(int), cudaMemcpyHostToDevice));
  int nn = n;
  void *args[] = { &in, &partial, &out, &nn };
  CHECK(cudaLaunchCooperativeKernel((void *)gridSum, dim3(blocks), dim3(threads), args, 0, 0));
  CHECK(cudaDeviceSynchronize());
  int got = 0;
  CHECK(cudaMemcpy(&got, out, sizeof(int), cudaMemcpyDeviceToHost));
  if (got != want) { fprintf(stderr, "grid sum %d, want %ld\n", got, want); return 2; }
  // Far more blocks than can be co-resident: refused at launch, and the context stays usable.
  cudaError_t e = cudaLaunchCooperativeKernel((void *)gridSum, dim3(100000), dim3(threads), args, 0, 0);
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  if (e != cudaErrorCooperativeLaunchTooLarge) { fprintf(stderr, "oversized cooperative grid: %s\n", cudaGetErrorString(e)); return 3; }
  CHECK(cudaMemcpy(&got, out, sizeof(int), cudaMemcpyDeviceToHost));
  printf("cooperative ok sum=%d\n", got);
  return 0;
}
