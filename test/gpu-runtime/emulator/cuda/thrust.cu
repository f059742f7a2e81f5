#include <thrust/device_ptr.h>
#include <thrust/reduce.h>
#include <thrust/sort.h>
#include <thrust/execution_policy.h>
extern "C" int run_reduce(int* d, int n) { return thrust::reduce(thrust::device_ptr<int>(d), thrust::device_ptr<int>(d)+n); }
extern "C" void run_sort(int* d, int n) { thrust::sort(thrust::device_ptr<int>(d), thrust::device_ptr<int>(d)+n); }
