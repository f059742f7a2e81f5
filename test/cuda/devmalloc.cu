// Device-side malloc/free and new/delete: per-thread allocations that outlive their launch, a heap sized by
// cudaDeviceSetLimit(cudaLimitMallocHeapSize) before the first launch, NULL when it cannot hold a request, and
// memory that comes back after free.
#include <cstdio>
#include <cstdlib>

#define CHECK(x) do { cudaError_t err_ = (x); if (err_ != cudaSuccess) { fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(err_)); exit(1); } } while (0)

struct Node { int value; Node *next; };

__global__ void build(int **slots, Node **lists, unsigned long long *nulls) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  int *p = (int *)malloc(64 * sizeof(int));
  for (int k = 0; k < 64; k++) p[k] = i * 64 + k;
  slots[i] = p;
  Node *head = nullptr;
  for (int k = 0; k < 4; k++) head = new Node{i * 10 + k, head};
  lists[i] = head;
  if (i == 0) {
    nulls[0] = (unsigned long long)malloc(32u << 20);   // more than the 24 MiB heap: NULL
    void *big = malloc(16u << 20);                      // more than the 8 MiB default: fits only thanks to the limit
    nulls[2] = big != nullptr;
    free(big);
  }
}

__global__ void consume(int **slots, Node **lists, long long *sums) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  long long s = 0;
  for (int k = 0; k < 64; k++) s += slots[i][k];
  for (Node *n = lists[i]; n;) { s += n->value; Node *next = n->next; delete n; n = next; }
  free(slots[i]);
  sums[i] = s;
}

__global__ void again(unsigned long long *ok) {
  // After everything was freed, the whole heap is one extent again: 23 MiB fits in one piece.
  void *p = malloc(23u << 20);
  ok[0] = p != nullptr;
  free(p);
}

int main() {
  const int n = 256;
  int **slots; Node **lists; long long *sums; unsigned long long *flags;
  CHECK(cudaMalloc(&slots, n * sizeof(int *))); CHECK(cudaMalloc(&lists, n * sizeof(Node *)));
  CHECK(cudaMalloc(&sums, n * 8)); CHECK(cudaMalloc(&flags, 24));
  CHECK(cudaDeviceSetLimit(cudaLimitMallocHeapSize, 24u << 20));
  size_t limit = 0;
  CHECK(cudaDeviceGetLimit(&limit, cudaLimitMallocHeapSize));
  if (limit != 24u << 20) { printf("limit reads back as %zu\n", limit); return 1; }
  build<<<n / 64, 64>>>(slots, lists, flags);
  CHECK(cudaGetLastError());
  consume<<<n / 64, 64>>>(slots, lists, sums);
  again<<<1, 1>>>(flags + 1);
  CHECK(cudaGetLastError()); CHECK(cudaDeviceSynchronize());
  long long h[n]; unsigned long long f[3];
  CHECK(cudaMemcpy(h, sums, sizeof h, cudaMemcpyDeviceToHost)); CHECK(cudaMemcpy(f, flags, sizeof f, cudaMemcpyDeviceToHost));
  int bad = 0;
  for (int i = 0; i < n; i++) {
    long long want = 64LL * i * 64 + 64 * 63 / 2 + (i * 10 * 4 + 6);
    if (h[i] != want && bad++ < 5) printf("thread %d: %lld, want %lld\n", i, h[i], want);
  }
  if (f[0] != 0) { bad++; printf("a 32 MiB malloc should give NULL\n"); }
  if (f[2] != 1) { bad++; printf("a 16 MiB malloc should fit the 24 MiB heap\n"); }
  if (f[1] != 1) { bad++; printf("the heap did not come back whole after free\n"); }
  if (bad) { printf("devmalloc: %d mismatches\n", bad); return 1; }
  printf("devmalloc ok\n");
  return 0;
}
