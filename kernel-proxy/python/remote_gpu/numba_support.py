"""Make Debian's numba 0.56 (python3-numba) compile @cuda.jit kernels with a CUDA 13 toolkit.

Two gaps, both found on bookworm with CUDA 13.0 (docs/jupyter.md):
- numba looks for libNVVM in $CUDA_HOME/nvvm/lib64, while this toolkit layout has it in $CUDA_HOME/lib64;
  a private CUDA_HOME made of symlinks fixes the search.
- numba 0.56 stamps its NVVM IR as version 1.6 and CUDA 13's libNVVM (IR 2.0) refuses that stamp, though it
  compiles the IR itself; stamping NVVM's own version makes it accept the module.
- numba 0.56 binds `cuX_v2` when the driver has it. CUDA 12/13 added `_v2` functions whose signatures
  differ from the plain ones (cuCtxGetDevice_v2 takes a context too), so numba would call them with
  missing arguments (on any CUDA 13 driver, not only ours); those are bound by their plain names.
- numba links its PTX into a cubin with cuLinkCreate/cuLinkAddData, which the Remote GPU driver does not
  offer (the linker runs where the GPU is). A kernel's PTX is self-contained, so the "link" step hands the
  PTX itself to cuModuleLoadDataEx, which the server JIT-compiles (or emulates) like any PTX module.
"""
import os
import tempfile

__all__ = ["enable_numba"]

# `_v2` entry points introduced in CUDA 12.x/13 with a different signature from the unsuffixed function.
_NEW_SIGNATURE_V2 = frozenset([
    "cuCtxGetDevice", "cuCtxSynchronize", "cuEventElapsedTime", "cuStreamGetCtx", "cuMemAdvise",
    "cuMemPrefetchAsync", "cuGraphAddNode", "cuGraphGetEdges", "cuGraphNodeGetDependencies",
    "cuGraphNodeGetDependentNodes", "cuGraphAddDependencies", "cuGraphRemoveDependencies",
])


def _toolkit():
    for base in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if base and os.path.isdir(base):
            return base
    raise RuntimeError("no CUDA toolkit found (set CUDA_HOME)")


def _shim_home(base):
    nvvm_dirs = [os.path.join(base, "nvvm", "lib64"), os.path.join(base, "lib64"), os.path.join(base, "lib")]
    lib = next((os.path.join(d, f) for d in nvvm_dirs if os.path.isdir(d)
                for f in sorted(os.listdir(d)) if f.startswith("libnvvm.so")), None)
    if lib is None:
        raise RuntimeError("libnvvm.so not found under %s" % base)
    if os.path.dirname(lib) == nvvm_dirs[0]:
        return base  # numba's expected layout already
    home = os.path.join(tempfile.gettempdir(), "rgpu-numba-cuda-%d" % os.getuid())
    os.makedirs(os.path.join(home, "nvvm", "lib64"), exist_ok=True)
    links = {os.path.join(home, "nvvm", "lib64", "libnvvm.so"): lib,
             os.path.join(home, "nvvm", "libdevice"): os.path.join(base, "nvvm", "libdevice"),
             os.path.join(home, "lib64"): os.path.join(base, "lib64")}
    for link, target in links.items():
        if os.path.islink(link) and os.readlink(link) == target:
            continue
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(target, link)
    return home


def enable_numba(ptx_linker=None):
    """Call before the first numba.cuda use; returns the CUDA_HOME numba will use.

    ptx_linker: replace numba's cuLink-based linker by a PTX pass-through (default: in a remote-gpu kernel).
    """
    home = _shim_home(_toolkit())
    os.environ["CUDA_HOME"] = home
    from llvmlite import ir
    from numba.cuda.cudadrv import nvvm

    major, minor, dbg_major, dbg_minor = nvvm.NVVM().get_ir_version()
    if major >= 2:
        def add_ir_version(mod):
            i32 = ir.IntType(32)
            mod.add_named_metadata("nvvmir.version", mod.add_metadata(
                [i32(major), i32(minor), i32(dbg_major), i32(dbg_minor)]))
        nvvm.add_ir_version = add_ir_version
    _bind_plain_names()
    if ptx_linker if ptx_linker is not None else bool(os.environ.get("REMOTE_GPU_PROXY")):
        _use_ptx_linker()
    return home


def _use_ptx_linker():
    import ctypes
    from numba.cuda.cudadrv import driver as drv

    class PtxLinker(drv.Linker):
        """Passes one PTX module through instead of linking it (see the module docstring)."""

        def __init__(self, max_registers=0, lineinfo=False, cc=None):
            self._ptx = []
            self._buf = None

        @property
        def info_log(self):
            return ""

        @property
        def error_log(self):
            return ""

        def add_ptx(self, ptx, name="<cudapy-ptx>"):
            self._ptx.append(bytes(ptx))

        def add_cu(self, cu, name):
            raise drv.LinkerError("linking CUDA C (%s) needs cuLink*, which the remote GPU does not offer" % name)

        def add_file(self, path, kind):
            if kind != drv.FILE_EXTENSION_MAP.get("ptx"):
                raise drv.LinkerError("linking %s needs cuLink*, which the remote GPU does not offer" % path)
            with open(path, "rb") as f:
                self._ptx.append(f.read())

        def complete(self):
            if len(self._ptx) != 1:
                raise drv.LinkerError("%d PTX modules to link; the remote GPU loads exactly one" % len(self._ptx))
            image = self._ptx[0].rstrip(b"\0") + b"\0"
            self._buf = ctypes.create_string_buffer(image, len(image))
            return self._buf, len(image)

    drv.Linker.new = classmethod(lambda cls, max_registers=0, lineinfo=False, cc=None: PtxLinker(max_registers, lineinfo, cc))


def _bind_plain_names():
    from numba.cuda.cudadrv import driver as drv

    original = drv.Driver._find_api
    if getattr(original, "_rgpu", False):
        return

    def _find_api(self, fname):
        if fname in _NEW_SIGNATURE_V2:
            try:
                return getattr(self.lib, fname)
            except AttributeError:
                pass
        return original(self, fname)

    _find_api._rgpu = True
    drv.Driver._find_api = _find_api
