#include <cooperative_groups.h>
namespace cg = cooperative_groups;
extern "C" __global__ void gridSum(const int* in, int* partial, int* out, int n) {
  cg::grid_group grid = cg::this_grid();
  __shared__ int s[256];
  int acc = 0;
  for (int i = grid.thread_rank(); i < n; i += grid.size()) acc += in[i];
  s[threadIdx.x] = acc;
  __syncthreads();
  for (int k = blockDim.x / 2; k > 0; k >>= 1) { if (threadIdx.x < k) s[threadIdx.x] += s[threadIdx.x + k]; __syncthreads(); }
  if (threadIdx.x == 0) partial[blockIdx.x] = s[0];
  grid.sync();
  if (blockIdx.x == 0 && threadIdx.x == 0) { int t = 0; for (int b = 0; b < gridDim.x; b++) t += partial[b]; *out = t; }
  grid.sync();
  if (threadIdx.x == 0) partial[blockIdx.x] = *out + blockIdx.x;
}
