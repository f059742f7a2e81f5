/* cuDevice*: one remote device, answered entirely from the HELLO reply (no round trips). */
#include "rgpu.h"

#include <stdio.h>
#include <string.h>

#define CHECK_INIT() do { CUresult rc_ = rgpu_rpc_ready(); if (rc_ == CUDA_ERROR_NOT_INITIALIZED) return rc_; \
                          if (rgpu_g.init_state != 1) return rc_; } while (0)
#define CHECK_DEV(d) do { if ((d) != 0) return CUDA_ERROR_INVALID_DEVICE; } while (0)

RGPU_EXPORT CUresult CUDAAPI cuDeviceGetCount(int *count)
{
    if (!count) return CUDA_ERROR_INVALID_VALUE;
    CHECK_INIT();
    *count = 1;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuDeviceGet(CUdevice *device, int ordinal)
{
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    CHECK_INIT();
    if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
    *device = 0;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuDeviceGetName(char *name, int len, CUdevice dev)
{
    if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    CHECK_INIT();
    CHECK_DEV(dev);
    snprintf(name, (size_t)len, "%s", rgpu_g.name);
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    CHECK_INIT();
    CHECK_DEV(dev);
    *bytes = (size_t)rgpu_g.total_mem;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
    if (!uuid) return CUDA_ERROR_INVALID_VALUE;
    CHECK_INIT();
    CHECK_DEV(dev);
    memcpy(uuid->bytes, rgpu_g.uuid, 16);
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev) { return cuDeviceGetUuid(uuid, dev); }

/* Host memory cannot be mapped into a device on another machine, so the attributes that promise it are
 * reported as 0 whatever the server's profile says; programs then take their copy paths. */
static int attr_override(int attr, int value)
{
    switch (attr) {
    case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY:
    case CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY:
    case CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS:
    case CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS:
    case CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS_USES_HOST_PAGE_TABLES:
    case CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM:
    case CU_DEVICE_ATTRIBUTE_HOST_REGISTER_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_DIRECT_MANAGED_MEM_ACCESS_FROM_HOST:
    /* a VMM allocation cannot be exported to another process across the wire */
    case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_WIN32_HANDLE_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_WIN32_KMT_HANDLE_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_FABRIC_SUPPORTED:
        return 0;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR:
        return value ? value : rgpu_g.cc_major;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR:
        return value ? value : rgpu_g.cc_minor;
    case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: return rgpu_g.pci_bus;
    case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID: return rgpu_g.pci_device;
    case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID: return rgpu_g.pci_domain;
    default: return value;
    }
}

RGPU_EXPORT CUresult CUDAAPI cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    if (!pi) return CUDA_ERROR_INVALID_VALUE;
    CHECK_INIT();
    CHECK_DEV(dev);
    if ((int)attrib <= 0 || (int)attrib >= CU_DEVICE_ATTRIBUTE_MAX) return CUDA_ERROR_INVALID_VALUE;
    *pi = attr_override((int)attrib, (int)attrib < RGPU_NATTRS ? rgpu_g.attrs[attrib] : 0);
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuDeviceComputeCapability(int *major, int *minor, CUdevice dev)
{
    if (!major || !minor) return CUDA_ERROR_INVALID_VALUE;
    CHECK_INIT();
    CHECK_DEV(dev);
    cuDeviceGetAttribute(major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
    cuDeviceGetAttribute(minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuDeviceGetProperties(CUdevprop *p, CUdevice dev)
{
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    CHECK_INIT();
    CHECK_DEV(dev);
    memset(p, 0, sizeof(*p));
    int *a = rgpu_g.attrs;
    p->maxThreadsPerBlock = a[CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK];
    p->maxThreadsDim[0] = a[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X];
    p->maxThreadsDim[1] = a[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y];
    p->maxThreadsDim[2] = a[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z];
    p->maxGridSize[0] = a[CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X];
    p->maxGridSize[1] = a[CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y];
    p->maxGridSize[2] = a[CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z];
    p->sharedMemPerBlock = a[CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK];
    p->totalConstantMemory = a[CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY];
    p->SIMDWidth = a[CU_DEVICE_ATTRIBUTE_WARP_SIZE];
    p->memPitch = a[CU_DEVICE_ATTRIBUTE_MAX_PITCH];
    p->regsPerBlock = a[CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK];
    p->clockRate = a[CU_DEVICE_ATTRIBUTE_CLOCK_RATE];
    p->textureAlign = a[CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT];
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev)
{
    if (!pciBusId || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    CHECK_INIT();
    CHECK_DEV(dev);
    snprintf(pciBusId, (size_t)len, "%08x:%02x:%02x.0", (unsigned)rgpu_g.pci_domain, (unsigned)rgpu_g.pci_bus,
             (unsigned)rgpu_g.pci_device);
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuDeviceGetByPCIBusId(CUdevice *dev, const char *pciBusId)
{
    if (!dev || !pciBusId) return CUDA_ERROR_INVALID_VALUE;
    CHECK_INIT();
    unsigned dom = 0, bus = 0, d = 0, fn = 0;
    /* Accepts domain:bus:device.function and bus:device.function, in hex, as the driver does. */
    if (sscanf(pciBusId, "%x:%x:%x.%x", &dom, &bus, &d, &fn) != 4) {
        dom = 0;
        if (sscanf(pciBusId, "%x:%x.%x", &bus, &d, &fn) != 3) return CUDA_ERROR_INVALID_VALUE;
    }
    if ((int)dom != rgpu_g.pci_domain || (int)bus != rgpu_g.pci_bus || (int)d != rgpu_g.pci_device)
        return CUDA_ERROR_INVALID_DEVICE;
    *dev = 0;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuDeviceCanAccessPeer(int *canAccessPeer, CUdevice dev, CUdevice peerDev)
{
    if (!canAccessPeer) return CUDA_ERROR_INVALID_VALUE;
    CHECK_INIT();
    CHECK_DEV(dev);
    if (peerDev != 0) return CUDA_ERROR_INVALID_DEVICE;
    *canAccessPeer = 0;
    return CUDA_SUCCESS;
}

RGPU_EXPORT CUresult CUDAAPI cuDeviceGetLuid(char *luid, unsigned int *deviceNodeMask, CUdevice dev)
{
    (void)luid; (void)deviceNodeMask; (void)dev;
    return rgpu_trace_unimplemented("cuDeviceGetLuid");
}
