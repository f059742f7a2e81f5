#include <thrust/device_ptr.h>
#include <thrust/reduce.h>
#include <thrust/sort.h>
#include <thrust/scan.h>
#include <thrust/transform_reduce.h>
#include <thrust/unique.h>
#include <thrust/functional.h>
struct sq { __host__ __device__ float operator()(float x) const { return x * x; } };
extern "C" void a(float* f, int n) { thrust::sort(thrust::device_ptr<float>(f), thrust::device_ptr<float>(f)+n); }
extern "C" void b(long long* k, int* v, int n) { thrust::sort_by_key(thrust::device_ptr<long long>(k), thrust::device_ptr<long long>(k)+n, thrust::device_ptr<int>(v)); }
extern "C" void c(int* d, int n) { thrust::inclusive_scan(thrust::device_ptr<int>(d), thrust::device_ptr<int>(d)+n, thrust::device_ptr<int>(d)); }
extern "C" float e(float* f, int n) { return thrust::transform_reduce(thrust::device_ptr<float>(f), thrust::device_ptr<float>(f)+n, sq(), 0.f, thrust::plus<float>()); }
extern "C" int u(int* d, int n) { return thrust::unique(thrust::device_ptr<int>(d), thrust::device_ptr<int>(d)+n) - thrust::device_ptr<int>(d); }
extern "C" void g(double* d, int n) { thrust::sort(thrust::device_ptr<double>(d), thrust::device_ptr<double>(d)+n, thrust::greater<double>()); }
