// Texture and surface objects on CUDA arrays and linear memory, checked against values computed on the host
// the way the hardware does it (linear filtering with 8-bit fractional weights). Prints one "ok" line per
// part; exits non-zero on the first mismatch.
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cuda_runtime.h>

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
  fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); exit(1); } } while (0)

static int fails = 0;
static void expect(const char *what, int i, float got, float want, float tol) {
  if (!(fabsf(got - want) <= tol)) {
    if (fails++ < 10) fprintf(stderr, "%s[%d]: got %.7f want %.7f\n", what, i, got, want);
  }
}

// ---- host reference ---------------------------------------------------------------------------
static int addr(int i, int n, cudaTextureAddressMode m) {
  if (m == cudaAddressModeClamp) return i < 0 ? 0 : i >= n ? n - 1 : i;
  return ((i % n) + n) % n; // wrap (only used with unnormalised indices from a wrapped coordinate)
}
static float q8(float f) { return floorf(f * 256.0f + 0.5f) / 256.0f; } // 1.8 fixed-point weight
static float lin2d(const float *t, int w, int h, float u, float v, cudaTextureAddressMode m) {
  float x = u * w, y = v * h; // normalized coords
  if (m == cudaAddressModeWrap) { x = (u - floorf(u)) * w; y = (v - floorf(v)) * h; }
  float xb = x - 0.5f, yb = y - 0.5f;
  int i = (int)floorf(xb), j = (int)floorf(yb);
  float a = q8(xb - i), b = q8(yb - j);
  float t00 = t[addr(j, h, m) * w + addr(i, w, m)], t10 = t[addr(j, h, m) * w + addr(i + 1, w, m)];
  float t01 = t[addr(j + 1, h, m) * w + addr(i, w, m)], t11 = t[addr(j + 1, h, m) * w + addr(i + 1, w, m)];
  return (1 - a) * (1 - b) * t00 + a * (1 - b) * t10 + (1 - a) * b * t01 + a * b * t11;
}

// ---- kernels ----------------------------------------------------------------------------------
__global__ void sample2d(cudaTextureObject_t t, const float2 *uv, float *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = tex2D<float>(t, uv[i].x, uv[i].y);
}
__global__ void fetch1d(cudaTextureObject_t ti, cudaTextureObject_t tc, int *out, float4 *outc, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) { out[i] = tex1Dfetch<int>(ti, i - 2); outc[i] = tex1Dfetch<float4>(tc, i); }
}
__global__ void sample3d(cudaTextureObject_t t, float *out, int w, int h, int d) {
  int x = threadIdx.x, y = threadIdx.y, z = blockIdx.x;
  out[(z * h + y) * w + x] = tex3D<float>(t, x + 0.5f, y + 0.5f, z + 0.5f);
  if (x == 0 && y == 0 && z == 0) out[w * h * d] = tex3D<float>(t, 1.25f, 0.5f, 1.75f);
}
__global__ void surfWrite(cudaSurfaceObject_t s, int w, int h) {
  int x = threadIdx.x, y = blockIdx.x;
  if (x < w && y < h) surf2Dwrite(make_float2(x * 10.0f + y, -(float)y), s, x * (int)sizeof(float2), y);
}
__global__ void surfRead(cudaSurfaceObject_t s, float *out, int w, int h) {
  int x = threadIdx.x, y = blockIdx.x;
  if (x < w && y < h) {
    float2 v = surf2Dread<float2>(s, x * (int)sizeof(float2), y);
    out[y * w + x] = v.x + v.y;
  }
  // Out of range with the default trap mode would fault; zero mode reads 0.
  if (x == 0 && y == 0) out[w * h] = surf2Dread<float2>(s, (w + 3) * (int)sizeof(float2), 0, cudaBoundaryModeZero).x;
}

__global__ void samplePitch(cudaTextureObject_t t, float4 *out, int n) {
  int i = threadIdx.x;
  if (i < n) out[i] = tex2D<float4>(t, -1.0f + i * 0.37f, 0.25f + i * 0.11f);
}
__global__ void layeredWrite(cudaSurfaceObject_t s) {
  int x = threadIdx.x, y = threadIdx.y, l = blockIdx.x;
  surf2DLayeredwrite(float(l * 100 + y * 10 + x), s, x * (int)sizeof(float), y, l);
}
// A later launch: the texture cache is not coherent with surface stores of the same kernel.
__global__ void layeredRead(cudaTextureObject_t t, float *out, int w, int h) {
  int x = threadIdx.x, y = threadIdx.y, l = blockIdx.x;
  out[(l * h + y) * w + x] = tex2DLayered<float>(t, (w - 1 - x) + 0.5f, y + 0.5f, l);
}

static void part2d() {
  const int W = 8, H = 6, N = 64;
  float host[W * H];
  for (int y = 0; y < H; y++) for (int x = 0; x < W; x++) host[y * W + x] = (float)(x * x) + 3.0f * y;
  cudaArray_t arr;
  cudaChannelFormatDesc fd = cudaCreateChannelDesc<float>();
  CK(cudaMallocArray(&arr, &fd, W, H));
  CK(cudaMemcpy2DToArray(arr, 0, 0, host, W * sizeof(float), W * sizeof(float), H, cudaMemcpyHostToDevice));
  float2 uv[N];
  for (int i = 0; i < N; i++) uv[i] = make_float2(-0.3f + i * 0.0271f, 1.2f - i * 0.0233f);
  float2 *duv; float *dout; float out[N];
  CK(cudaMalloc(&duv, sizeof(uv)));
  CK(cudaMalloc(&dout, sizeof(out)));
  CK(cudaMemcpy(duv, uv, sizeof(uv), cudaMemcpyHostToDevice));
  cudaTextureAddressMode modes[2] = { cudaAddressModeClamp, cudaAddressModeWrap };
  for (int m = 0; m < 2; m++) {
    cudaResourceDesc rd = {};
    rd.resType = cudaResourceTypeArray;
    rd.res.array.array = arr;
    cudaTextureDesc td = {};
    td.addressMode[0] = td.addressMode[1] = modes[m];
    td.filterMode = cudaFilterModeLinear;
    td.readMode = cudaReadModeElementType;
    td.normalizedCoords = 1;
    cudaTextureObject_t t;
    CK(cudaCreateTextureObject(&t, &rd, &td, nullptr));
    sample2d<<<2, 32>>>(t, duv, dout, N);
    CK(cudaGetLastError());
    CK(cudaMemcpy(out, dout, sizeof(out), cudaMemcpyDeviceToHost));
    for (int i = 0; i < N; i++) expect(m ? "tex2D wrap" : "tex2D clamp", i, out[i], lin2d(host, W, H, uv[i].x, uv[i].y, modes[m]), 1e-4f * (1 + fabsf(out[i])));
    CK(cudaDestroyTextureObject(t));
  }
  // The array reads back as written.
  float back[W * H];
  CK(cudaMemcpy2DFromArray(back, W * sizeof(float), arr, 0, 0, W * sizeof(float), H, cudaMemcpyDeviceToHost));
  for (int i = 0; i < W * H; i++) expect("array readback", i, back[i], host[i], 0);
  CK(cudaFreeArray(arr));
  CK(cudaFree(duv)); CK(cudaFree(dout));
  printf("tex2d ok %.4f\n", out[5]);
}

static void part1d() {
  const int N = 40;
  int hi[N]; uchar4 hc[N];
  for (int i = 0; i < N; i++) { hi[i] = i * 7 - 100; hc[i] = make_uchar4(i, 255 - i, i * 3, 128); }
  int *di; uchar4 *dc; int *dout; float4 *doutc;
  CK(cudaMalloc(&di, sizeof(hi))); CK(cudaMalloc(&dc, sizeof(hc)));
  CK(cudaMalloc(&dout, sizeof(hi))); CK(cudaMalloc(&doutc, N * sizeof(float4)));
  CK(cudaMemcpy(di, hi, sizeof(hi), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dc, hc, sizeof(hc), cudaMemcpyHostToDevice));
  cudaResourceDesc rd = {};
  rd.resType = cudaResourceTypeLinear;
  rd.res.linear.devPtr = di;
  rd.res.linear.desc = cudaCreateChannelDesc<int>();
  rd.res.linear.sizeInBytes = sizeof(hi);
  cudaTextureDesc td = {};
  td.readMode = cudaReadModeElementType;
  cudaTextureObject_t ti, tc;
  CK(cudaCreateTextureObject(&ti, &rd, &td, nullptr));
  rd.res.linear.devPtr = dc;
  rd.res.linear.desc = cudaCreateChannelDesc<uchar4>();
  rd.res.linear.sizeInBytes = sizeof(hc);
  td.readMode = cudaReadModeNormalizedFloat;
  CK(cudaCreateTextureObject(&tc, &rd, &td, nullptr));
  fetch1d<<<1, N>>>(ti, tc, dout, doutc, N);
  CK(cudaGetLastError());
  int out[N]; float4 outc[N];
  CK(cudaMemcpy(out, dout, sizeof(out), cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(outc, doutc, sizeof(outc), cudaMemcpyDeviceToHost));
  for (int i = 0; i < N; i++) {
    // tex1Dfetch outside the buffer returns 0.
    int want = (i - 2 >= 0 && i - 2 < N) ? hi[i - 2] : 0;
    expect("tex1Dfetch int", i, (float)out[i], (float)want, 0);
    expect("tex1Dfetch uchar4.x", i, outc[i].x, hc[i].x / 255.0f, 1e-6f);
    expect("tex1Dfetch uchar4.y", i, outc[i].y, hc[i].y / 255.0f, 1e-6f);
    expect("tex1Dfetch uchar4.w", i, outc[i].w, 128 / 255.0f, 1e-6f);
  }
  CK(cudaDestroyTextureObject(ti)); CK(cudaDestroyTextureObject(tc));
  CK(cudaFree(di)); CK(cudaFree(dc)); CK(cudaFree(dout)); CK(cudaFree(doutc));
  printf("tex1dfetch ok %d\n", out[N - 1]);
}

static void part3d() {
  const int W = 4, H = 3, D = 5;
  float host[D][H][W];
  for (int z = 0; z < D; z++) for (int y = 0; y < H; y++) for (int x = 0; x < W; x++) host[z][y][x] = x + 10.0f * y + 100.0f * z;
  cudaArray_t arr;
  cudaChannelFormatDesc fd = cudaCreateChannelDesc<float>();
  CK(cudaMalloc3DArray(&arr, &fd, make_cudaExtent(W, H, D)));
  cudaMemcpy3DParms p = {};
  p.srcPtr = make_cudaPitchedPtr(host, W * sizeof(float), W, H);
  p.dstArray = arr;
  p.extent = make_cudaExtent(W, H, D);
  p.kind = cudaMemcpyHostToDevice;
  CK(cudaMemcpy3D(&p));
  cudaResourceDesc rd = {};
  rd.resType = cudaResourceTypeArray;
  rd.res.array.array = arr;
  cudaTextureDesc td = {};
  td.addressMode[0] = td.addressMode[1] = td.addressMode[2] = cudaAddressModeClamp;
  td.filterMode = cudaFilterModeLinear;
  td.readMode = cudaReadModeElementType;
  cudaTextureObject_t t;
  CK(cudaCreateTextureObject(&t, &rd, &td, nullptr));
  float *dout; const int N = W * H * D + 1;
  CK(cudaMalloc(&dout, N * sizeof(float)));
  sample3d<<<D, dim3(W, H)>>>(t, dout, W, H, D);
  CK(cudaGetLastError());
  float out[N];
  CK(cudaMemcpy(out, dout, sizeof(out), cudaMemcpyDeviceToHost));
  for (int z = 0; z < D; z++) for (int y = 0; y < H; y++) for (int x = 0; x < W; x++)
    expect("tex3D texel centre", (z * H + y) * W + x, out[(z * H + y) * W + x], host[z][y][x], 0);
  // (1.25, 0.5, 1.75): x - 0.5 = 0.75 weighs texels 0 and 1 by 0.25 / 0.75; z - 0.5 = 1.25 weighs slices 1
  // and 2 by 0.75 / 0.25; y sits on row 0.
  float want = 0.75f * (0.25f * host[1][0][0] + 0.75f * host[1][0][1]) + 0.25f * (0.25f * host[2][0][0] + 0.75f * host[2][0][1]);
  expect("tex3D linear", 0, out[N - 1], want, 1e-3f);
  // And back through cudaMemcpy3D from the array.
  float back[D][H][W];
  cudaMemcpy3DParms q = {};
  q.srcArray = arr;
  q.dstPtr = make_cudaPitchedPtr(back, W * sizeof(float), W, H);
  q.extent = make_cudaExtent(W, H, D);
  q.kind = cudaMemcpyDeviceToHost;
  CK(cudaMemcpy3D(&q));
  for (int i = 0; i < W * H * D; i++) expect("3d readback", i, (&back[0][0][0])[i], (&host[0][0][0])[i], 0);
  CK(cudaDestroyTextureObject(t));
  CK(cudaFreeArray(arr)); CK(cudaFree(dout));
  printf("tex3d ok %.2f\n", out[N - 1]);
}

static void partSurface() {
  const int W = 16, H = 5;
  cudaArray_t arr;
  cudaChannelFormatDesc fd = cudaCreateChannelDesc<float2>();
  CK(cudaMallocArray(&arr, &fd, W, H, cudaArraySurfaceLoadStore));
  cudaResourceDesc rd = {};
  rd.resType = cudaResourceTypeArray;
  rd.res.array.array = arr;
  cudaSurfaceObject_t s;
  CK(cudaCreateSurfaceObject(&s, &rd));
  surfWrite<<<H, W>>>(s, W, H);
  CK(cudaGetLastError());
  float *dout; float out[W * H + 1];
  CK(cudaMalloc(&dout, sizeof(out)));
  CK(cudaMemset(dout, 0xff, sizeof(out)));
  surfRead<<<H, W>>>(s, dout, W, H);
  CK(cudaGetLastError());
  CK(cudaMemcpy(out, dout, sizeof(out), cudaMemcpyDeviceToHost));
  for (int y = 0; y < H; y++) for (int x = 0; x < W; x++) expect("surf2Dread", y * W + x, out[y * W + x], x * 10.0f + y - y, 0);
  expect("surf2Dread zero", 0, out[W * H], 0, 0);
  float2 back[H][W];
  CK(cudaMemcpy2DFromArray(back, W * sizeof(float2), arr, 0, 0, W * sizeof(float2), H, cudaMemcpyDeviceToHost));
  for (int y = 0; y < H; y++) for (int x = 0; x < W; x++) {
    expect("surface readback x", y * W + x, back[y][x].x, x * 10.0f + y, 0);
    expect("surface readback y", y * W + x, back[y][x].y, -(float)y, 0);
  }
  CK(cudaDestroySurfaceObject(s));
  CK(cudaFreeArray(arr)); CK(cudaFree(dout));
  printf("surface ok %.1f\n", out[W * H - 1]);
}

// Pitched linear memory as a 2D texture (uchar4, normalized float, linear filtering, border), and a 3D copy
// from pitched device memory into a layered array written through a surface and read through a texture.
static float bilinearU8(const uchar4 *t, int pitchElems, int w, int h, float x, float y, int c) {
  float xb = x - 0.5f, yb = y - 0.5f;
  int i = (int)floorf(xb), j = (int)floorf(yb);
  float a = q8(xb - i), b = q8(yb - j);
  auto T = [&](int ii, int jj) -> float {
    if (ii < 0 || jj < 0 || ii >= w || jj >= h) return c == 3 ? 1.0f : 0.5f; // border colour
    const uchar4 &v = t[jj * pitchElems + ii];
    return (c == 0 ? v.x : c == 1 ? v.y : c == 2 ? v.z : v.w) / 255.0f;
  };
  return (1 - a) * (1 - b) * T(i, j) + a * (1 - b) * T(i + 1, j) + (1 - a) * b * T(i, j + 1) + a * b * T(i + 1, j + 1);
}

static void partPitch() {
  const int W = 5, H = 3, N = 20;
  uchar4 host[H][W];
  for (int y = 0; y < H; y++) for (int x = 0; x < W; x++) host[y][x] = make_uchar4(x * 50, y * 100, 255 - x * 20, 7 * x + y);
  uchar4 *d; size_t pitch;
  CK(cudaMallocPitch(&d, &pitch, W * sizeof(uchar4), H));
  CK(cudaMemcpy2D(d, pitch, host, W * sizeof(uchar4), W * sizeof(uchar4), H, cudaMemcpyHostToDevice));
  cudaResourceDesc rd = {};
  rd.resType = cudaResourceTypePitch2D;
  rd.res.pitch2D.devPtr = d;
  rd.res.pitch2D.desc = cudaCreateChannelDesc<uchar4>();
  rd.res.pitch2D.width = W;
  rd.res.pitch2D.height = H;
  rd.res.pitch2D.pitchInBytes = pitch;
  cudaTextureDesc td = {};
  td.addressMode[0] = td.addressMode[1] = cudaAddressModeBorder;
  td.borderColor[0] = td.borderColor[1] = td.borderColor[2] = 0.5f;
  td.borderColor[3] = 1.0f;
  td.filterMode = cudaFilterModeLinear;
  td.readMode = cudaReadModeNormalizedFloat;
  cudaTextureObject_t t;
  CK(cudaCreateTextureObject(&t, &rd, &td, nullptr));
  float4 *dout, out[N];
  CK(cudaMalloc(&dout, sizeof(out)));
  samplePitch<<<1, N>>>(t, dout, N);
  CK(cudaGetLastError());
  CK(cudaMemcpy(out, dout, sizeof(out), cudaMemcpyDeviceToHost));
  for (int i = 0; i < N; i++) {
    float x = -1.0f + i * 0.37f, y = 0.25f + i * 0.11f;
    expect("pitch2D uchar4.x", i, out[i].x, bilinearU8(&host[0][0], W, W, H, x, y, 0), 2e-3f);
    expect("pitch2D uchar4.z", i, out[i].z, bilinearU8(&host[0][0], W, W, H, x, y, 2), 2e-3f);
    expect("pitch2D uchar4.w", i, out[i].w, bilinearU8(&host[0][0], W, W, H, x, y, 3), 2e-3f);
  }
  CK(cudaDestroyTextureObject(t));
  CK(cudaFree(d)); CK(cudaFree(dout));

  // Layered: L layers of W x H floats.
  const int L = 3;
  cudaArray_t arr;
  cudaChannelFormatDesc fd = cudaCreateChannelDesc<float>();
  CK(cudaMalloc3DArray(&arr, &fd, make_cudaExtent(W, H, L), cudaArrayLayered | cudaArraySurfaceLoadStore));
  // Seed it from pitched device memory with a 3D copy (overwritten by the surface stores below).
  cudaPitchedPtr src;
  CK(cudaMalloc3D(&src, make_cudaExtent(W * sizeof(float), H, L)));
  CK(cudaMemset3D(src, 0, make_cudaExtent(W * sizeof(float), H, L)));
  cudaMemcpy3DParms p = {};
  p.srcPtr = src;
  p.dstArray = arr;
  p.extent = make_cudaExtent(W, H, L);
  p.kind = cudaMemcpyDeviceToDevice;
  CK(cudaMemcpy3D(&p));
  rd = {};
  rd.resType = cudaResourceTypeArray;
  rd.res.array.array = arr;
  cudaSurfaceObject_t s;
  CK(cudaCreateSurfaceObject(&s, &rd));
  td = {};
  td.addressMode[0] = td.addressMode[1] = cudaAddressModeClamp;
  td.filterMode = cudaFilterModePoint;
  td.readMode = cudaReadModeElementType;
  CK(cudaCreateTextureObject(&t, &rd, &td, nullptr));
  float *lo, lout[L * H * W];
  CK(cudaMalloc(&lo, sizeof(lout)));
  layeredWrite<<<L, dim3(W, H)>>>(s);
  layeredRead<<<L, dim3(W, H)>>>(t, lo, W, H);
  CK(cudaGetLastError());
  CK(cudaMemcpy(lout, lo, sizeof(lout), cudaMemcpyDeviceToHost));
  for (int l = 0; l < L; l++) for (int y = 0; y < H; y++) for (int x = 0; x < W; x++)
    expect("layered", (l * H + y) * W + x, lout[(l * H + y) * W + x], l * 100 + y * 10 + (W - 1 - x), 0);
  CK(cudaDestroyTextureObject(t)); CK(cudaDestroySurfaceObject(s));
  CK(cudaFreeArray(arr)); CK(cudaFree(src.ptr)); CK(cudaFree(lo));
  printf("pitch2d layered ok %.4f\n", out[3].x);
}

// What this runtime refuses is refused synchronously and leaves the context usable.
static void partErrors() {
  cudaMipmappedArray_t mm;
  cudaChannelFormatDesc fd = cudaCreateChannelDesc<float>();
  cudaError_t e = cudaMallocMipmappedArray(&mm, &fd, make_cudaExtent(8, 8, 0), 3);
  if (e == cudaSuccess) { fprintf(stderr, "mipmapped array accepted\n"); fails++; }
  cudaGetLastError();
  cudaArray_t arr;
  CK(cudaMallocArray(&arr, &fd, 4, 4));
  cudaResourceDesc rd = {};
  rd.resType = cudaResourceTypeArray;
  rd.res.array.array = arr;
  cudaSurfaceObject_t so;
  if (cudaCreateSurfaceObject(&so, &rd) == cudaSuccess) { fprintf(stderr, "surface on a non-surface array accepted\n"); fails++; }
  cudaGetLastError();
  float rows[5 * 4] = {};
  if (cudaMemcpy2DToArray(arr, 0, 0, rows, 16, 16, 5, cudaMemcpyHostToDevice) == cudaSuccess) { fprintf(stderr, "copy past the array accepted\n"); fails++; }
  cudaGetLastError();
  for (int i = 0; i < 16; i++) rows[i] = (float)i;
  CK(cudaMemcpy2DToArray(arr, 0, 0, rows, 16, 16, 4, cudaMemcpyHostToDevice));
  float back[16];
  CK(cudaMemcpy2DFromArray(back, 16, arr, 4, 1, 8, 2, cudaMemcpyDeviceToHost));
  for (int y = 0; y < 2; y++) for (int x = 0; x < 2; x++) expect("sub-box readback", y * 2 + x, back[y * 4 + x], rows[(1 + y) * 4 + 1 + x], 0);
  CK(cudaFreeArray(arr));
  CK(cudaDeviceSynchronize());
  printf("errors ok\n");
}

// An array dies with cudaDeviceReset; freeing it afterwards must not free what now lives at its address.
static void partReset() {
  cudaArray_t arr;
  cudaChannelFormatDesc fd = cudaCreateChannelDesc<float>();
  CK(cudaMallocArray(&arr, &fd, 8, 8));
  CK(cudaDeviceReset());
  float *p;
  CK(cudaMalloc(&p, 256));
  cudaFreeArray(arr);
  cudaGetLastError();
  float v = 5, w = 0;
  CK(cudaMemcpy(p, &v, sizeof(v), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(&w, p, sizeof(w), cudaMemcpyDeviceToHost));
  expect("allocation after reset", 0, w, v, 0);
  CK(cudaFree(p));
  printf("reset ok\n");
}

// Against a device without texture objects: creation fails at once, before any kernel could use the handle.
static int refuseOnly() {
  cudaArray_t arr;
  cudaChannelFormatDesc fd = cudaCreateChannelDesc<float>();
  CK(cudaMallocArray(&arr, &fd, 4, 4, cudaArraySurfaceLoadStore));
  cudaResourceDesc rd = {};
  rd.resType = cudaResourceTypeArray;
  rd.res.array.array = arr;
  cudaTextureDesc td = {};
  cudaTextureObject_t t;
  cudaSurfaceObject_t s;
  cudaError_t et = cudaCreateTextureObject(&t, &rd, &td, nullptr);
  cudaError_t es = cudaCreateSurfaceObject(&s, &rd);
  CK(cudaFreeArray(arr));
  CK(cudaDeviceSynchronize());
  printf("refused %s %s\n", cudaGetErrorName(et), cudaGetErrorName(es));
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1) return refuseOnly();
  part2d();
  part1d();
  part3d();
  partSurface();
  partPitch();
  partErrors();
  partReset();
  if (fails) { fprintf(stderr, "%d mismatches\n", fails); return 1; }
  printf("textures ok\n");
  return 0;
}
