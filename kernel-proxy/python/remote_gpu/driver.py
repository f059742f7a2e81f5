"""A thin ctypes view of the CUDA driver API, through whatever libcuda.so.1 the kernel loaded.

In a remote-gpu kernel that is the intercept library (LD_LIBRARY_PATH puts it first), so every call here
travels to the remote GPU.
"""
import ctypes
import os

__all__ = ["CudaError", "libcuda", "check", "device_info", "loaded_libcuda_path"]

_lib = None


class CudaError(RuntimeError):
    def __init__(self, fn, code, name, text):
        super().__init__("%s failed: %s (%d): %s" % (fn, name, code, text))
        self.code = code
        self.name = name


def libcuda():
    """The process's libcuda.so.1 (loaded once)."""
    global _lib
    if _lib is None:
        try:
            _lib = ctypes.CDLL("libcuda.so.1")
        except OSError as e:
            where = (os.environ.get("LD_LIBRARY_PATH") or "").split(":")[0] or "(LD_LIBRARY_PATH is empty)"
            raise OSError("%s. The Remote GPU intercept libcuda.so.1 should be in %s (build it with "
                          "`npm run build:c`, then restart the kernel)" % (e, where)) from None
    return _lib


def check(fn, *args):
    """Calls cu<fn>(*args); raises CudaError on a non-zero CUresult."""
    lib = libcuda()
    r = getattr(lib, fn)(*args)
    if r != 0:
        name, text = ctypes.c_char_p(), ctypes.c_char_p()
        lib.cuGetErrorName(r, ctypes.byref(name))
        lib.cuGetErrorString(r, ctypes.byref(text))
        raise CudaError(fn, r, (name.value or b"?").decode(), (text.value or b"?").decode())


def loaded_libcuda_path():
    """The file that libcuda.so.1 was loaded from (from /proc/self/maps), or None."""
    libcuda()
    with open("/proc/self/maps") as f:
        for line in f:
            if "libcuda.so" in line:
                return line.split(None, 5)[-1].strip()
    return None


def device_info(ordinal=0):
    """Name, memory, compute capability and driver version of device `ordinal`."""
    lib = libcuda()
    check("cuInit", 0)
    count, dev, version = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    check("cuDeviceGetCount", ctypes.byref(count))
    check("cuDeviceGet", ctypes.byref(dev), ordinal)
    name = ctypes.create_string_buffer(256)
    check("cuDeviceGetName", name, 256, dev)
    mem = ctypes.c_size_t()
    check("cuDeviceTotalMem_v2", ctypes.byref(mem), dev)
    major, minor, sms = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    check("cuDeviceGetAttribute", ctypes.byref(major), 75, dev)   # COMPUTE_CAPABILITY_MAJOR
    check("cuDeviceGetAttribute", ctypes.byref(minor), 76, dev)   # COMPUTE_CAPABILITY_MINOR
    check("cuDeviceGetAttribute", ctypes.byref(sms), 16, dev)     # MULTIPROCESSOR_COUNT
    check("cuDriverGetVersion", ctypes.byref(version))
    return {
        "count": count.value, "name": name.value.decode(), "totalMem": mem.value,
        "cc": "%d.%d" % (major.value, minor.value), "multiprocessors": sms.value,
        "driverVersion": version.value,
    }
