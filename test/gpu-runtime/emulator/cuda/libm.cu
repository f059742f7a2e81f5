// libdevice math (inlined slow paths: Payne-Hanek reduction, local arrays, 64-bit ALU, mad.cc chains) and
// cooperative groups (tile reduce, shared double atomics, fences, clock64, coalesced groups).
#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
namespace cg = cooperative_groups;

extern "C" __global__ void mathk(const double* x, double* y, float* z, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  double v = x[i];
  y[i] = sin(v) + cos(v * 1e6) + exp(v) + log(fabs(v) + 1) + pow(fabs(v), 0.3) + tanh(v) + atan2(v, 1.5) + cbrt(v) + fmod(v, 1.3);
  float f = (float)v;
  z[i] = sinf(f * 1000.0f) + expf(f) + logf(fabsf(f) + 1) + powf(fabsf(f), 0.3f) + tanhf(f) + atan2f(f, 1.5f) + sqrtf(fabsf(f)) + __ldg(&z[i]);
}

extern "C" __global__ void cgk(const int* in, int* out) {
  auto block = cg::this_thread_block();
  auto tile = cg::tiled_partition<32>(block);
  int v = in[block.thread_rank()];
  int s = cg::reduce(tile, v, cg::plus<int>());
  __shared__ double sd;
  if (block.thread_rank() == 0) sd = 0;
  block.sync();
  atomicAdd(&sd, (double)v);
  __threadfence();
  block.sync();
  long long c = clock64();
  if (tile.thread_rank() == 0) out[block.thread_rank() / 32] = s + (int)sd + (c < 0);
  if (v & 1) {
    auto g = cg::coalesced_threads();
    out[64 + block.thread_rank()] = g.size() * 100 + g.thread_rank();
  }
}
