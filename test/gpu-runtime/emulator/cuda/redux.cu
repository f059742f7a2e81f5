// sm_80 warp reductions (redux.sync); compiled with -arch=sm_80.
extern "C" __global__ void redux(const int* in, int* out) {
  int t = threadIdx.x;
  unsigned v = (unsigned)in[t];
  out[t * 4 + 0] = __reduce_add_sync(0xffffffff, v);
  out[t * 4 + 1] = __reduce_min_sync(0xffffffff, (int)v);
  out[t * 4 + 2] = __reduce_max_sync(0xffffffff, v);
  out[t * 4 + 3] = __reduce_xor_sync(0xffffffff, v);
}
