// Asks nvidia-smi about itself while it holds 64 MiB of device memory: under Remote GPU the answer must be
// the remote GPU's, with this process listed and the memory counted.
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <cuda_runtime.h>

int main() {
  void *d = nullptr;
  const size_t bytes = 64u << 20;
  if (cudaMalloc(&d, bytes) != cudaSuccess) return 2;
  if (cudaMemset(d, 1, bytes) != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) return 3;
  printf("self %d\n", (int)getpid());
  fflush(stdout);
  int rc = system("nvidia-smi --query-gpu=name,memory.used --format=csv,noheader,nounits && "
                  "nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits");
  cudaFree(d);
  return rc == 0 ? 0 : 4;
}
