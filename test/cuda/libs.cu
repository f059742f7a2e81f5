// CUB block/warp primitives, cooperative_groups scans/reductions and memcpy_async, and libcu++ atomic_ref, as
// real code uses them: results checked against the host.
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cub/cub.cuh>
#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
#include <cooperative_groups/scan.h>
#include <cooperative_groups/memcpy_async.h>
#include <cuda/atomic>
#include <cuda/functional>
namespace cg = cooperative_groups;

#define CHECK(x) do { cudaError_t err_ = (x); if (err_ != cudaSuccess) { fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(err_)); exit(1); } } while (0)

__global__ void blockReduceScan(const int *in, int *sum, int *scan) {
  typedef cub::BlockReduce<int, 128> BR; typedef cub::BlockScan<int, 128> BS;
  __shared__ union { typename BR::TempStorage r; typename BS::TempStorage s; } t;
  int v = in[blockIdx.x * 128 + threadIdx.x];
  int s = BR(t.r).Sum(v);
  if (threadIdx.x == 0) sum[blockIdx.x] = s;
  __syncthreads();
  int e; BS(t.s).ExclusiveSum(v, e);
  scan[blockIdx.x * 128 + threadIdx.x] = e;
}
__global__ void blockSort(int *keys) {
  typedef cub::BlockRadixSort<int, 128, 4> S; __shared__ typename S::TempStorage t;
  int k[4]; for (int i = 0; i < 4; i++) k[i] = keys[blockIdx.x * 512 + threadIdx.x * 4 + i];
  S(t).Sort(k);
  for (int i = 0; i < 4; i++) keys[blockIdx.x * 512 + threadIdx.x * 4 + i] = k[i];
}
__global__ void warpOps(const int *in, int *wmax, int *iscan) {
  typedef cub::WarpReduce<int> WR; __shared__ typename WR::TempStorage t[4];
  int w = threadIdx.x / 32, v = in[threadIdx.x];
  int m = WR(t[w]).Reduce(v, cuda::maximum<>());
  if (threadIdx.x % 32 == 0) wmax[w] = m;
  auto tile = cg::tiled_partition<32>(cg::this_thread_block());
  iscan[threadIdx.x] = cg::inclusive_scan(tile, v) + 0 * cg::reduce(tile, v, cg::greater<int>());
}
__global__ void staged(const int *in, int *out) {
  __shared__ int sh[256]; auto b = cg::this_thread_block();
  cg::memcpy_async(b, sh, in, sizeof(int) * 256); cg::wait(b);
  out[b.thread_rank()] = sh[255 - b.thread_rank()];
}
__global__ void atomics(int *ctr, float *f) {
  cuda::atomic_ref<int, cuda::thread_scope_device> a(*ctr); a.fetch_add(2, cuda::memory_order_relaxed);
  cuda::atomic_ref<float, cuda::thread_scope_device> fa(*f); fa.fetch_add(0.5f);
}

int main() {
  const int NB = 8, N = NB * 128;
  int h[N * 4]; unsigned s = 7;
  for (int i = 0; i < N * 4; i++) { s = s * 1103515245u + 12345u; h[i] = (int)(s >> 8) % 1000 - 500; }
  int *din, *dsum, *dscan, *dkeys, *dw, *di, *dst, *dctr; float *df;
  CHECK(cudaMalloc(&din, N * 4)); CHECK(cudaMalloc(&dsum, NB * 4)); CHECK(cudaMalloc(&dscan, N * 4));
  CHECK(cudaMalloc(&dkeys, N * 16)); CHECK(cudaMalloc(&dw, 16)); CHECK(cudaMalloc(&di, 512)); CHECK(cudaMalloc(&dst, 1024));
  CHECK(cudaMalloc(&dctr, 4)); CHECK(cudaMalloc(&df, 4));
  CHECK(cudaMemcpy(din, h, N * 4, cudaMemcpyHostToDevice)); CHECK(cudaMemcpy(dkeys, h, N * 16, cudaMemcpyHostToDevice));
  CHECK(cudaMemset(dctr, 0, 4)); CHECK(cudaMemset(df, 0, 4));
  blockReduceScan<<<NB, 128>>>(din, dsum, dscan);
  blockSort<<<N * 4 / 512, 128>>>(dkeys);
  warpOps<<<1, 128>>>(din, dw, di);
  staged<<<1, 256>>>(din, dst);
  atomics<<<16, 64>>>(dctr, df);
  CHECK(cudaGetLastError()); CHECK(cudaDeviceSynchronize());
  int sum[NB], scan[N], keys[N * 4], wmax[4], iscan[128], st[256], ctr; float f;
  CHECK(cudaMemcpy(sum, dsum, sizeof sum, cudaMemcpyDeviceToHost)); CHECK(cudaMemcpy(scan, dscan, sizeof scan, cudaMemcpyDeviceToHost));
  CHECK(cudaMemcpy(keys, dkeys, sizeof keys, cudaMemcpyDeviceToHost)); CHECK(cudaMemcpy(wmax, dw, sizeof wmax, cudaMemcpyDeviceToHost));
  CHECK(cudaMemcpy(iscan, di, sizeof iscan, cudaMemcpyDeviceToHost)); CHECK(cudaMemcpy(st, dst, sizeof st, cudaMemcpyDeviceToHost));
  CHECK(cudaMemcpy(&ctr, dctr, 4, cudaMemcpyDeviceToHost)); CHECK(cudaMemcpy(&f, df, 4, cudaMemcpyDeviceToHost));
  int bad = 0;
  for (int b = 0; b < NB; b++) {
    int acc = 0;
    for (int i = 0; i < 128; i++) { if (scan[b * 128 + i] != acc && bad++ < 5) printf("scan %d.%d\n", b, i); acc += h[b * 128 + i]; }
    if (sum[b] != acc && bad++ < 5) printf("sum %d: %d vs %d\n", b, sum[b], acc);
  }
  for (int b = 0; b < N * 4 / 512; b++) {
    int ref[512]; std::copy(h + b * 512, h + b * 512 + 512, ref); std::sort(ref, ref + 512);
    for (int i = 0; i < 512; i++) if (keys[b * 512 + i] != ref[i] && bad++ < 5) printf("sort %d.%d\n", b, i);
  }
  for (int w = 0; w < 4; w++) {
    int m = h[w * 32], acc = 0;
    for (int i = 0; i < 32; i++) { m = std::max(m, h[w * 32 + i]); acc += h[w * 32 + i]; if (iscan[w * 32 + i] != acc && bad++ < 5) printf("iscan %d.%d\n", w, i); }
    if (wmax[w] != m && bad++ < 5) printf("wmax %d\n", w);
  }
  for (int i = 0; i < 256; i++) if (st[i] != h[255 - i] && bad++ < 5) printf("memcpy_async %d\n", i);
  if (ctr != 16 * 64 * 2 || f != 512.0f) { bad++; printf("atomic_ref: %d %g\n", ctr, f); }
  if (bad) { printf("libs: %d mismatches\n", bad); return 1; }
  printf("libs ok\n");
  return 0;
}
