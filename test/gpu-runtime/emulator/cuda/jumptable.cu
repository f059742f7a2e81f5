// brx.idx through a .branchtargets table (hand-written in inline asm: nvcc rarely emits jump tables), in a
// kernel with a barrier so the table's targets also matter to the liveness at the sync point.
extern "C" __global__ void jt(const int* in, int* out, int n) {
  __shared__ int s[128];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  int v = i < n ? in[i] : 0, r;
  asm volatile("{\n\t"
      ".reg .u32 k;\n\t"
      "and.b32 k, %1, 3;\n\t"
      "Ltbl: .branchtargets L0, L1, L2, L3;\n\t"
      "brx.idx k, Ltbl;\n\t"
      "L0: mul.lo.s32 %0, %1, 3; bra.uni Lend;\n\t"
      "L1: xor.b32 %0, %1, 85; bra.uni Lend;\n\t"
      "L2: sub.s32 %0, %1, 100; bra.uni Lend;\n\t"
      "L3: neg.s32 %0, %1;\n\t"
      "Lend:\n\t"
      "}" : "=r"(r) : "r"(v));
  s[threadIdx.x] = r;
  __syncthreads();
  if (i < n) out[i] = s[threadIdx.x] + s[(threadIdx.x + 1) % blockDim.x];
}
