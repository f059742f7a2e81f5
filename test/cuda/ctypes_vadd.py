"""A Python program that drives the GPU through ctypes and the driver API, as notebooks without a CUDA
package do: PTX text, cuModuleLoadData, cuLaunchKernel; checks its result and exits 1 on a mismatch."""
import ctypes
import sys

PTX = b"""
.version 7.0
.target sm_75
.address_size 64
.visible .entry vadd(.param .u64 pa, .param .u64 pb, .param .u64 pc, .param .u32 n)
{
  .reg .pred %p<2>; .reg .b32 %r<6>; .reg .f32 %f<4>; .reg .b64 %rd<10>;
  ld.param.u64 %rd1, [pa]; ld.param.u64 %rd2, [pb]; ld.param.u64 %rd3, [pc]; ld.param.u32 %r1, [n];
  mov.u32 %r2, %ctaid.x; mov.u32 %r3, %ntid.x; mov.u32 %r4, %tid.x; mad.lo.s32 %r5, %r2, %r3, %r4;
  setp.ge.u32 %p1, %r5, %r1; @%p1 bra DONE;
  mul.wide.u32 %rd4, %r5, 4; add.s64 %rd5, %rd1, %rd4; add.s64 %rd6, %rd2, %rd4; add.s64 %rd7, %rd3, %rd4;
  ld.global.f32 %f1, [%rd5]; ld.global.f32 %f2, [%rd6]; add.f32 %f3, %f1, %f2; st.global.f32 [%rd7], %f3;
DONE:
  ret;
}
"""


def main():
    cu = ctypes.CDLL("libcuda.so.1")

    def check(name, *args):
        rc = getattr(cu, name)(*args)
        if rc != 0:
            msg = ctypes.c_char_p()
            cu.cuGetErrorName(rc, ctypes.byref(msg))
            sys.exit(f"{name} failed: {rc} {msg.value}")

    check("cuInit", 0)
    dev = ctypes.c_int()
    check("cuDeviceGet", ctypes.byref(dev), 0)
    name = ctypes.create_string_buffer(256)
    check("cuDeviceGetName", name, 256, dev)
    ctx = ctypes.c_void_p()
    check("cuDevicePrimaryCtxRetain", ctypes.byref(ctx), dev)
    check("cuCtxSetCurrent", ctx)
    mod = ctypes.c_void_p()
    check("cuModuleLoadData", ctypes.byref(mod), ctypes.c_char_p(PTX))
    fn = ctypes.c_void_p()
    check("cuModuleGetFunction", ctypes.byref(fn), mod, b"vadd")
    n = 4096
    arr = ctypes.c_float * n
    a = arr(*[float(i) for i in range(n)])
    b = arr(*[float(3 * i) for i in range(n)])
    c = arr()
    ptrs = [ctypes.c_uint64() for _ in range(3)]
    for p in ptrs:
        check("cuMemAlloc_v2", ctypes.byref(p), ctypes.c_size_t(4 * n))
    check("cuMemcpyHtoD_v2", ptrs[0], a, ctypes.c_size_t(4 * n))
    check("cuMemcpyHtoD_v2", ptrs[1], b, ctypes.c_size_t(4 * n))
    cn = ctypes.c_uint32(n)
    params = (ctypes.c_void_p * 4)(*[ctypes.cast(ctypes.byref(p), ctypes.c_void_p) for p in ptrs],
                                   ctypes.cast(ctypes.byref(cn), ctypes.c_void_p))
    check("cuLaunchKernel", fn, (n + 255) // 256, 1, 1, 256, 1, 1, 0, None, params, None)
    check("cuCtxSynchronize")
    check("cuMemcpyDtoH_v2", c, ptrs[2], ctypes.c_size_t(4 * n))
    bad = [i for i in range(n) if c[i] != 4.0 * i]
    if bad:
        sys.exit(f"mismatch at {bad[:5]}")
    for p in ptrs:
        check("cuMemFree_v2", p)
    print(f"ctypes ok on {name.value.decode()} c[4095]={c[4095]:g}")


main()
