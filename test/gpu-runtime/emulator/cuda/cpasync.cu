// cp.async (pipeline primitives, cooperative_groups::memcpy_async, cuda::memcpy_async with a cuda::barrier)
// and mbarrier waits (asyncops.test.ts; built for sm_80 and sm_90, which wait with test_wait / try_wait).
#include <cuda_pipeline.h>
#include <cooperative_groups.h>
#include <cooperative_groups/memcpy_async.h>
#include <cuda/barrier>
namespace cg = cooperative_groups;

// 16-byte copies, the zero-fill form (only `keep` bytes of each source), two stages in flight.
__global__ void pipe(const float4* g, float* out, int keep) {
  __shared__ float4 s[2][128];
  int i = threadIdx.x;
  __pipeline_memcpy_async(&s[0][i], &g[blockIdx.x * 256 + i], sizeof(float4));
  __pipeline_commit();
  __pipeline_memcpy_async(&s[1][i], &g[blockIdx.x * 256 + 128 + i], sizeof(float4), sizeof(float4) - keep);
  __pipeline_commit();
  __pipeline_wait_prior(1);
  __syncthreads();
  float4 v = s[0][(i + 1) % 128];
  __pipeline_wait_prior(0);
  __syncthreads();
  float4 w = s[1][(i + 5) % 128];
  out[blockIdx.x * 128 + i] = v.x + 2 * v.y + 3 * v.z + 4 * v.w + 10 * (w.x + w.y + w.z + w.w);
}

__global__ void group(const float* g, float* out) {
  __shared__ float s[256];
  auto block = cg::this_thread_block();
  cg::memcpy_async(block, s, g + blockIdx.x * 256, sizeof(float) * 256);
  cg::wait(block);
  out[blockIdx.x * 256 + threadIdx.x] = s[255 - threadIdx.x];
}

// The barrier's phases: two rounds, the second one re-arming it.
__global__ void barrier(const int* g, int* out) {
  __shared__ int s[2][64];
#pragma nv_diag_suppress static_var_with_dynamic_init
  __shared__ cuda::barrier<cuda::thread_scope_block> bar;
  if (threadIdx.x == 0) init(&bar, blockDim.x);
  __syncthreads();
  for (int r = 0; r < 2; r++) {
    cuda::memcpy_async(&s[r][threadIdx.x], &g[r * 64 + threadIdx.x], sizeof(int), bar);
    bar.arrive_and_wait();
    out[r * 64 + threadIdx.x] = s[r][63 - threadIdx.x] * (r + 1);
  }
}

// One thread copies the whole tile (sm_90: cp.async.bulk paying its bytes to the barrier's tx-count, which the
// barrier's expect_tx raises after the copy completed).
__global__ void bulk(const int4* g, int* out) {
  __shared__ alignas(16) int4 s[64];
#pragma nv_diag_suppress static_var_with_dynamic_init
  __shared__ cuda::barrier<cuda::thread_scope_block> bar;
  if (threadIdx.x == 0) init(&bar, blockDim.x);
  __syncthreads();
  if (threadIdx.x == 0) cuda::memcpy_async(s, g + blockIdx.x * 64, cuda::aligned_size_t<16>(sizeof(s)), bar);
  bar.arrive_and_wait();
  int4 v = s[63 - threadIdx.x];
  out[blockIdx.x * 64 + threadIdx.x] = v.x + 2 * v.y + 3 * v.z + 4 * v.w;
}
