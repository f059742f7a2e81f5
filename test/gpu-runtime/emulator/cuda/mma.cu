// Tensor-core ops (mma.test.ts, sm_80): wmma m16n16k16 with f16/bf16 inputs and f32/f16 accumulators, and
// mma.sync m16n8k16 (f16) / m16n8k8 (bf16) through inline PTX with the PTX ISA's fragment layouts.
#include <mma.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
using namespace nvcuda;

// C[M][N] = 2 * A[M][K] (row-major) * B (col-major: B[n][k]); one warp per 16x16 tile.
__global__ void wmma_f16(const half* a, const half* b, float* c, int N, int K) {
  wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::col_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
  wmma::fill_fragment(fc, 0.0f);
  for (int k = 0; k < K; k += 16) {
    wmma::load_matrix_sync(fa, a + blockIdx.y * 16 * K + k, K);
    wmma::load_matrix_sync(fb, b + blockIdx.x * 16 * K + k, K);
    wmma::mma_sync(fc, fa, fb, fc);
  }
  for (int i = 0; i < fc.num_elements; i++) fc.x[i] *= 2.0f;
  wmma::store_matrix_sync(c + blockIdx.y * 16 * N + blockIdx.x * 16, fc, N, wmma::mem_row_major);
}

// c (16x16, col-major) += A (col-major) * B (row-major), bf16 inputs, through shared memory.
__global__ void wmma_bf16(const __nv_bfloat16* a, const __nv_bfloat16* b, float* c) {
  __shared__ __nv_bfloat16 sa[256], sb[256];
  for (int i = threadIdx.x; i < 256; i += 32) { sa[i] = a[i]; sb[i] = b[i]; }
  __syncwarp();
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::col_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
  wmma::load_matrix_sync(fc, c, 16, wmma::mem_col_major);
  wmma::load_matrix_sync(fa, sa, 16);
  wmma::load_matrix_sync(fb, sb, 16);
  wmma::mma_sync(fc, fa, fb, fc);
  wmma::store_matrix_sync(c, fc, 16, wmma::mem_col_major);
}

// Half accumulators: c = A (row) * B (row) + c, all f16, 16x16 row-major.
__global__ void wmma_h(const half* a, const half* b, half* c) {
  wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::row_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, half> fc;
  wmma::load_matrix_sync(fc, c, 16, wmma::mem_row_major);
  wmma::load_matrix_sync(fa, a, 16);
  wmma::load_matrix_sync(fb, b, 16);
  wmma::mma_sync(fc, fa, fb, fc);
  wmma::store_matrix_sync(c, fc, 16, wmma::mem_row_major);
}

__device__ unsigned pack(const unsigned short* p, int i0, int i1) { return p[i0] | ((unsigned)p[i1] << 16); }

// D (16x8 row-major) = A (16x16 row-major) * B (16x8 row-major) + C, fragments per the PTX ISA.
__global__ void mma_k16(const unsigned short* A, const unsigned short* B, const float* C, float* D) {
  int l = threadIdx.x, g = l >> 2, t = l & 3;
  unsigned a0 = pack(A, g * 16 + 2 * t, g * 16 + 2 * t + 1), a1 = pack(A, (g + 8) * 16 + 2 * t, (g + 8) * 16 + 2 * t + 1);
  unsigned a2 = pack(A, g * 16 + 2 * t + 8, g * 16 + 2 * t + 9), a3 = pack(A, (g + 8) * 16 + 2 * t + 8, (g + 8) * 16 + 2 * t + 9);
  unsigned b0 = pack(B, (2 * t) * 8 + g, (2 * t + 1) * 8 + g), b1 = pack(B, (2 * t + 8) * 8 + g, (2 * t + 9) * 8 + g);
  float c0 = C[g * 8 + 2 * t], c1 = C[g * 8 + 2 * t + 1], c2 = C[(g + 8) * 8 + 2 * t], c3 = C[(g + 8) * 8 + 2 * t + 1];
  float d0, d1, d2, d3;
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"
    : "=f"(d0), "=f"(d1), "=f"(d2), "=f"(d3) : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1), "f"(c0), "f"(c1), "f"(c2), "f"(c3));
  D[g * 8 + 2 * t] = d0; D[g * 8 + 2 * t + 1] = d1; D[(g + 8) * 8 + 2 * t] = d2; D[(g + 8) * 8 + 2 * t + 1] = d3;
}

// D (16x8) = A (16x8 row-major, bf16) * B (8x8 row-major, bf16) + C.
__global__ void mma_k8(const unsigned short* A, const unsigned short* B, const float* C, float* D) {
  int l = threadIdx.x, g = l >> 2, t = l & 3;
  unsigned a0 = pack(A, g * 8 + 2 * t, g * 8 + 2 * t + 1), a1 = pack(A, (g + 8) * 8 + 2 * t, (g + 8) * 8 + 2 * t + 1);
  unsigned b0 = pack(B, (2 * t) * 8 + g, (2 * t + 1) * 8 + g);
  float c0 = C[g * 8 + 2 * t], c1 = C[g * 8 + 2 * t + 1], c2 = C[(g + 8) * 8 + 2 * t], c3 = C[(g + 8) * 8 + 2 * t + 1];
  float d0, d1, d2, d3;
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%7,%8,%9,%10};"
    : "=f"(d0), "=f"(d1), "=f"(d2), "=f"(d3) : "r"(a0), "r"(a1), "r"(b0), "f"(c0), "f"(c1), "f"(c2), "f"(c3));
  D[g * 8 + 2 * t] = d0; D[g * 8 + 2 * t + 1] = d1; D[(g + 8) * 8 + 2 * t] = d2; D[(g + 8) * 8 + 2 * t + 1] = d3;
}

// Integer tensor cores: c (16x16 row-major s32) = A (s8, row) * B (s8, col) + c.
__global__ void wmma_s8(const signed char* a, const signed char* b, int* c) {
  wmma::fragment<wmma::matrix_a, 16, 16, 16, signed char, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, signed char, wmma::col_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, int> fc;
  wmma::load_matrix_sync(fc, c, 16, wmma::mem_row_major);
  wmma::load_matrix_sync(fa, a, 16);
  wmma::load_matrix_sync(fb, b, 16);
  wmma::mma_sync(fc, fa, fb, fc);
  wmma::store_matrix_sync(c, fc, 16, wmma::mem_row_major);
}

// tf32: c (16x16 row-major f32) = A (16x8 row) * B (8x16 row), inputs rounded with __float_to_tf32.
__global__ void wmma_tf32(const float* a, const float* b, float* c) {
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> fc;
  wmma::fill_fragment(fc, 0.0f);
  wmma::load_matrix_sync(fa, a, 8);
  wmma::load_matrix_sync(fb, b, 16);
  for (int i = 0; i < fa.num_elements; i++) fa.x[i] = wmma::__float_to_tf32(fa.x[i]);
  for (int i = 0; i < fb.num_elements; i++) fb.x[i] = wmma::__float_to_tf32(fb.x[i]);
  wmma::mma_sync(fc, fa, fb, fc);
  wmma::store_matrix_sync(c, fc, 16, wmma::mem_row_major);
}

// f64: c (8x8 row-major) = A (8x4 row) * B (4x8 col) + c.
__global__ void wmma_f64(const double* a, const double* b, double* c) {
  wmma::fragment<wmma::matrix_a, 8, 8, 4, double, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 8, 8, 4, double, wmma::col_major> fb;
  wmma::fragment<wmma::accumulator, 8, 8, 4, double> fc;
  wmma::load_matrix_sync(fc, c, 8, wmma::mem_row_major);
  wmma::load_matrix_sync(fa, a, 4);
  wmma::load_matrix_sync(fb, b, 4);
  wmma::mma_sync(fc, fa, fb, fc);
  wmma::store_matrix_sync(c, fc, 8, wmma::mem_row_major);
}

// ldmatrix feeding mma.sync (the usual pairing): A (16x16 row-major) with .x4, B from Bt (8x16, n-major) with
// .x2 and from B (16x8 row-major) with .x2.trans; D1 and D2 (16x8 row-major) must both be A*B.
__global__ void mma_ldmatrix(const unsigned short* A, const unsigned short* B, float* D1, float* D2) {
  __shared__ alignas(16) unsigned short sa[256], sbt[128], sb[128];
  int l = threadIdx.x, g = l >> 2, t = l & 3;
  for (int i = l; i < 256; i += 32) sa[i] = A[i];
  for (int i = l; i < 128; i += 32) { sb[i] = B[i]; sbt[(i % 8) * 16 + i / 8] = B[i]; }
  __syncwarp();
  unsigned a[4], b[2], bb[2];
  unsigned pa = (unsigned)__cvta_generic_to_shared(&sa[(l % 16) * 16 + (l / 16) * 8]);
  unsigned pb = (unsigned)__cvta_generic_to_shared(&sbt[(l % 8) * 16 + ((l / 8) % 2) * 8]);
  unsigned pt = (unsigned)__cvta_generic_to_shared(&sb[(l % 16) * 8]);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];" : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3]) : "r"(pa));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];" : "=r"(b[0]), "=r"(b[1]) : "r"(pb));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];" : "=r"(bb[0]), "=r"(bb[1]) : "r"(pt));
  float d[4], e[4];
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%10,%10,%10};"
    : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(0.f));
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%10,%10,%10};"
    : "=f"(e[0]), "=f"(e[1]), "=f"(e[2]), "=f"(e[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(bb[0]), "r"(bb[1]), "f"(0.f));
  for (int k = 0; k < 4; k++) { int r = g + (k >> 1) * 8, c = 2 * t + (k & 1); D1[r * 8 + c] = d[k]; D2[r * 8 + c] = e[k]; }
}
