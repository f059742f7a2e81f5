/* cuGetProcAddress: (name, cudaVersion, flags) -> the ABI variant cudart expects. The tables come from
 * tools/gen_procs.py (build/procs.c): for each name, the largest PFN_<name>_v<N> in cudaTypedefs.h with
 * N <= the requested version names the symbol; flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM
 * picks its _ptsz/_ptds twin when one exists. Only symbols this library implements are returned. */
#include "rgpu.h"

#include <string.h>

static void *impl_of(const char *sym)
{
    size_t lo = 0, hi = rgpu_procs_impl_count;
    while (lo < hi) { /* rgpu_procs_impl is sorted by name */
        size_t mid = (lo + hi) / 2;
        int c = strcmp(rgpu_procs_impl[mid].name, sym);
        if (c == 0) return rgpu_procs_impl[mid].fn;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

static void *resolve(const char *name, int version, int ptds)
{
    const struct rgpu_proc_version *best = NULL;
    size_t lo = 0, hi = rgpu_procs_versions_count;
    while (lo < hi) { /* sorted by (name, version): find the first entry of name */
        size_t mid = (lo + hi) / 2;
        if (strcmp(rgpu_procs_versions[mid].name, name) < 0) lo = mid + 1; else hi = mid;
    }
    for (size_t i = lo; i < rgpu_procs_versions_count && strcmp(rgpu_procs_versions[i].name, name) == 0; i++)
        if (rgpu_procs_versions[i].version <= version) best = &rgpu_procs_versions[i];
    if (!best) return NULL;
    if (ptds && best->sym_ptds) {
        void *fn = impl_of(best->sym_ptds);
        if (fn) return fn;
    }
    return impl_of(best->sym);
}

RGPU_EXPORT CUresult CUDAAPI cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                                                 CUdriverProcAddressQueryResult *symbolStatus)
{
    if (!pfn) return CUDA_ERROR_INVALID_VALUE;
    *pfn = NULL;
    if (!symbol) return CUDA_ERROR_INVALID_VALUE;
    void *fn = symbol[0] ? resolve(symbol, cudaVersion, (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0) : NULL;
    if (!fn) {
        if (symbolStatus) *symbolStatus = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
        if (symbol[0] && rgpu_trace_on()) rgpu_trace("cuGetProcAddress: %s@%d flags %llu not provided", symbol, cudaVersion, (unsigned long long)flags);
        return CUDA_ERROR_NOT_FOUND;
    }
    *pfn = fn;
    if (symbolStatus) *symbolStatus = CU_GET_PROC_ADDRESS_SUCCESS;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags)
{
    return cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, NULL);
}
