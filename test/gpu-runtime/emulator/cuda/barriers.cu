// Producer/consumer over named barriers: warps 0-1 fill a shared buffer and bar.arrive; warps 2-3 bar.sync,
// consume, then bar.arrive on the "empty" barrier the producers wait on next round.
extern "C" __global__ void prodcons(const int* in, int* out, int rounds) {
  __shared__ int buf[64];
  int t = threadIdx.x;
  for (int r = 0; r < rounds; r++) {
    if (t < 64) {
      if (r > 0) asm volatile("bar.sync 2, 128;" ::: "memory");
      buf[t] = in[r * 64 + t] * 2;
      asm volatile("bar.arrive 1, 128;" ::: "memory");
    } else {
      asm volatile("bar.sync 1, 128;" ::: "memory");
      out[r * 64 + (t - 64)] = buf[127 - t] + r;
      asm volatile("bar.arrive 2, 128;" ::: "memory");
    }
  }
}
