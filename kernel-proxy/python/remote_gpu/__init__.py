"""Remote GPU IPython extension: ``%%cuda`` cells, ``%gpu`` status and a ctypes view of the driver API.

Loaded by the remote-gpu kernel launcher (``--ext=remote_gpu``); ``%load_ext remote_gpu`` works elsewhere.
"""
from . import ctl, driver
from .ctl import ProxyError, call as proxy_call
from .cuda_cell import CudaCellError, compile_cuda, run_cuda_cell, last_run
from .driver import CudaError, check, device_info, libcuda, loaded_libcuda_path
from .gpu_magic import format_report, gpu_magic, gpu_report
from .numba_support import enable_numba

__all__ = ["ProxyError", "proxy_call", "CudaCellError", "compile_cuda", "run_cuda_cell", "last_run", "CudaError",
           "check", "device_info", "libcuda", "loaded_libcuda_path", "format_report", "gpu_magic", "gpu_report",
           "enable_numba", "load_ipython_extension"]


def _cuda(line, cell):
    try:
        run_cuda_cell(line, cell)
    except CudaCellError as e:
        # A short error instead of a traceback into this module, while still failing the cell.
        raise CudaCellError(str(e)) from None


def load_ipython_extension(ip):
    ip.register_magic_function(_cuda, magic_kind="cell", magic_name="cuda")
    ip.register_magic_function(gpu_magic, magic_kind="line", magic_name="gpu")
