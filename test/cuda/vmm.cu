// Virtual memory management through the intercept: reserve, create, map side by side, use from a kernel,
// copy across two mappings, unmap and remap elsewhere (contents must follow the handle), refusals
// (aliasing, partial mapping, freeing a mapped range), release. Driver entry points come through
// cudaGetDriverEntryPointByVersion, i.e. through the intercept's cuGetProcAddress table.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#define CHECK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); exit(1); } } while (0)
#define CU(x) do { CUresult r_ = (x); if (r_ != CUDA_SUCCESS) { \
    fprintf(stderr, "%s:%d: %s: CUresult %d\n", __FILE__, __LINE__, #x, (int)r_); exit(1); } } while (0)
#define EXPECT(x, want) do { CUresult r_ = (x); if (r_ != (want)) { \
    fprintf(stderr, "%s:%d: %s: CUresult %d, expected %d\n", __FILE__, __LINE__, #x, (int)r_, (int)(want)); exit(1); } } while (0)
#define ASSERT(c, ...) do { if (!(c)) { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } } while (0)

#define DECL(name, ver) static PFN_##name##_v##ver p_##name;
#define LOAD(name) do { cudaDriverEntryPointQueryResult q_; \
    CHECK(cudaGetDriverEntryPointByVersion(#name, (void **)&p_##name, 12000, cudaEnableDefault, &q_)); \
    ASSERT(q_ == cudaDriverEntryPointSuccess && p_##name, "no driver entry point %s", #name); } while (0)

DECL(cuMemGetAllocationGranularity, 10020) DECL(cuMemAddressReserve, 10020) DECL(cuMemAddressFree, 10020)
DECL(cuMemCreate, 10020) DECL(cuMemRelease, 10020) DECL(cuMemMap, 10020) DECL(cuMemUnmap, 10020)
DECL(cuMemSetAccess, 10020) DECL(cuMemGetAccess, 10020) DECL(cuMemGetAllocationPropertiesFromHandle, 10020)
DECL(cuMemRetainAllocationHandle, 11000)

// Thread i writes a value derived from i and `tag` into one int per 4 KiB page.
__global__ void touch(int *p, int pages, int tag)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < pages) p[(size_t)i * 1024] = i * 7 + tag;
}

static void expect_pages(const int *dev, int pages, int tag, const char *what)
{
    int *h = (int *)malloc((size_t)pages * 4096);
    CHECK(cudaMemcpy(h, dev, (size_t)pages * 4096, cudaMemcpyDeviceToHost));
    for (int i = 0; i < pages; i++)
        ASSERT(h[(size_t)i * 1024] == i * 7 + tag, "%s: page %d holds %d, expected %d", what, i, h[(size_t)i * 1024], i * 7 + tag);
    free(h);
}

int main()
{
    CHECK(cudaFree(0));
    LOAD(cuMemGetAllocationGranularity); LOAD(cuMemAddressReserve); LOAD(cuMemAddressFree); LOAD(cuMemCreate);
    LOAD(cuMemRelease); LOAD(cuMemMap); LOAD(cuMemUnmap); LOAD(cuMemSetAccess); LOAD(cuMemGetAccess);
    LOAD(cuMemGetAllocationPropertiesFromHandle); LOAD(cuMemRetainAllocationHandle);
    size_t free0, total;
    CHECK(cudaMemGetInfo(&free0, &total));

    CUmemAllocationProp prop = {};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = 0;
    size_t g = 0;
    CU(p_cuMemGetAllocationGranularity(&g, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED));
    ASSERT(g >= 4096 && (g & (g - 1)) == 0, "granularity %zu", g);
    EXPECT(p_cuMemCreate(NULL, g, &prop, 0), CUDA_ERROR_INVALID_VALUE);

    CUdeviceptr R;
    CU(p_cuMemAddressReserve(&R, 4 * g, 0, 0, 0));
    ASSERT(R % g == 0, "reservation 0x%llx not aligned to %zu", (unsigned long long)R, g);
    EXPECT(p_cuMemAddressReserve(&R, g + 1, 0, 0, 0), CUDA_ERROR_INVALID_VALUE);
    // reserved but unmapped: not memory yet
    ASSERT(cudaMemset((void *)R, 0, 16) != cudaSuccess, "memset of unmapped reserved memory succeeded");
    cudaGetLastError();

    CUmemGenericAllocationHandle h1, h2;
    CU(p_cuMemCreate(&h1, 2 * g, &prop, 0));
    CU(p_cuMemCreate(&h2, g, &prop, 0));
    size_t free1;
    CHECK(cudaMemGetInfo(&free1, &total));
    ASSERT(free0 - free1 == 3 * g, "cuMemCreate of 3 granules took %zu bytes of free memory", free0 - free1);
    CU(p_cuMemMap(R, 2 * g, 0, h1, 0));
    CU(p_cuMemMap(R + 2 * g, g, 0, h2, 0));
    CUmemAccessDesc acc = {};
    acc.location = prop.location;
    acc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    CU(p_cuMemSetAccess(R, 3 * g, &acc, 1));
    unsigned long long flags = 0;
    CU(p_cuMemGetAccess(&flags, &prop.location, R + 2 * g + 5));
    ASSERT(flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE, "access flags %llu", flags);
    EXPECT(p_cuMemSetAccess(R, 4 * g, &acc, 1), CUDA_ERROR_INVALID_VALUE); // the last granule is not mapped

    // one kernel over both mappings; copies that run across the seam between them
    const int pages = (int)(3 * g / 4096);
    touch<<<(pages + 127) / 128, 128>>>((int *)R, pages, 1);
    CHECK(cudaGetLastError());
    expect_pages((const int *)R, pages, 1, "after mapping");
    int seam[4] = { 11, 22, 33, 44 }, back[4];
    CHECK(cudaMemcpy((void *)(R + 2 * g - 8), seam, 16, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(back, (void *)(R + 2 * g - 8), 16, cudaMemcpyDeviceToHost));
    ASSERT(back[0] == 11 && back[3] == 44, "copy across the seam read %d..%d", back[0], back[3]);
    touch<<<(pages + 127) / 128, 128>>>((int *)R, pages, 2);
    CHECK(cudaDeviceSynchronize());

    CUmemGenericAllocationHandle again;
    CU(p_cuMemRetainAllocationHandle(&again, (void *)(R + g + 100)));
    ASSERT(again == h1, "retained handle differs");
    CU(p_cuMemRelease(again));
    CUmemAllocationProp got = {};
    CU(p_cuMemGetAllocationPropertiesFromHandle(&got, h2));
    ASSERT(got.type == CU_MEM_ALLOCATION_TYPE_PINNED && got.location.id == 0, "properties");

    // refusals: aliasing, partial mapping, cudaFree of a mapping, freeing a mapped reservation
    CUdeviceptr R2;
    CU(p_cuMemAddressReserve(&R2, 2 * g, 0, 0, 0));
    EXPECT(p_cuMemMap(R2, 2 * g, 0, h1, 0), CUDA_ERROR_NOT_SUPPORTED);
    CUmemGenericAllocationHandle h3;
    CU(p_cuMemCreate(&h3, 2 * g, &prop, 0));
    EXPECT(p_cuMemMap(R2, g, 0, h3, 0), CUDA_ERROR_NOT_SUPPORTED);
    EXPECT(p_cuMemMap(R2 + g, 2 * g, 0, h3, 0), CUDA_ERROR_INVALID_VALUE); // runs past the reservation
    ASSERT(cudaFree((void *)R) != cudaSuccess, "cudaFree of a mapping succeeded");
    cudaGetLastError();
    EXPECT(p_cuMemAddressFree(R, 4 * g), CUDA_ERROR_INVALID_VALUE);

    // swap the two handles' places: contents follow their handles
    CU(p_cuMemUnmap(R, 2 * g));
    CU(p_cuMemUnmap(R + 2 * g, g));
    ASSERT(cudaMemset((void *)R, 0, 16) != cudaSuccess, "memset of unmapped memory succeeded");
    cudaGetLastError();
    CU(p_cuMemMap(R, g, 0, h2, 0));         // h1 is parked there: moved aside
    CU(p_cuMemMap(R + g, 2 * g, 0, h1, 0)); // and moved back, one granule up
    CU(p_cuMemSetAccess(R, 3 * g, &acc, 1));
    const int pg = (int)(g / 4096);
    int *hh = (int *)malloc(3 * g);
    CHECK(cudaMemcpy(hh, (void *)R, 3 * g, cudaMemcpyDeviceToHost));
    for (int i = 0; i < pg; i++) ASSERT(hh[(size_t)i * 1024] == (2 * pg + i) * 7 + 2, "h2 page %d after the move: %d", i, hh[(size_t)i * 1024]);
    for (int i = 0; i < 2 * pg; i++) ASSERT(hh[(size_t)(pg + i) * 1024] == i * 7 + 2, "h1 page %d after the move: %d", i, hh[(size_t)(pg + i) * 1024]);
    free(hh);

    // release while mapped: the memory goes with the unmap
    CU(p_cuMemRelease(h1));
    CU(p_cuMemRelease(h2));
    CU(p_cuMemRelease(h3));
    EXPECT(p_cuMemRelease(h3), CUDA_ERROR_INVALID_VALUE);
    CU(p_cuMemUnmap(R, g));
    CU(p_cuMemUnmap(R + g, 2 * g));
    CU(p_cuMemAddressFree(R, 4 * g));
    CU(p_cuMemAddressFree(R2, 2 * g));
    size_t free2;
    CHECK(cudaMemGetInfo(&free2, &total));
    ASSERT(free2 == free0, "free memory %zu after release, %zu before", free2, free0);
    // the space is usable again by ordinary allocations
    void *p;
    CHECK(cudaMalloc(&p, 4 * g));
    CHECK(cudaMemset(p, 1, 4 * g));
    CHECK(cudaFree(p));
    CHECK(cudaDeviceSynchronize());
    printf("vmm ok granularity=%zu pages=%d\n", g, pages);
    return 0;
}
