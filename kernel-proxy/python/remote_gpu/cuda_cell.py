"""`%%cuda`: compile a cell of CUDA C++ with nvcc and run it in a child process.

The child inherits the kernel's environment, so its cudart loads the intercept libcuda.so.1 and its
kernels run on the remote GPU. Binaries are cached per user by (nvcc, source, nvcc args): re-running an
unchanged cell, or the same notebook in a new kernel, skips nvcc, which costs seconds.
"""
import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

__all__ = ["CudaCellError", "find_nvcc", "compile_cuda", "run_cuda_cell", "last_run"]

last_run = {}
_workdir = None


class CudaCellError(RuntimeError):
    """nvcc failed or the program exited non-zero; the message carries the detail."""


def find_nvcc():
    for cand in (os.environ.get("NVCC"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise CudaCellError("nvcc not found: install the CUDA toolkit or set NVCC=/path/to/nvcc")


def _cache_dir():
    global _workdir
    if _workdir is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        _workdir = os.path.join(base, "remote-gpu", "cuda")
        try:
            os.makedirs(_workdir, mode=0o700, exist_ok=True)
        except OSError:
            _workdir = tempfile.mkdtemp(prefix="rgpu-cuda-")
    return _workdir


def compile_cuda(source, nvcc_args=()):
    """Returns (binary path, seconds spent in nvcc; 0 when cached)."""
    nvcc = find_nvcc()
    # nvcc's mtime is in the key so a toolkit upgrade recompiles.
    stamp = str(os.stat(nvcc).st_mtime_ns)
    key = hashlib.sha256(("\0".join([nvcc, stamp, source, *nvcc_args])).encode()).hexdigest()[:20]
    d = os.path.join(_cache_dir(), key)
    exe = os.path.join(d, "cell")
    if os.path.exists(exe):
        return exe, 0.0
    os.makedirs(d, exist_ok=True)
    # Per-process names: two kernels compiling the same cell must not write into each other's files.
    src = os.path.join(d, "cell.%d.cu" % os.getpid())
    tmp_exe = "%s.%d.tmp" % (exe, os.getpid())
    with open(src, "w") as f:
        f.write(source)
    t0 = time.monotonic()
    r = subprocess.run([nvcc, *nvcc_args, "-o", tmp_exe, src], capture_output=True, text=True)
    os.remove(src)
    if r.returncode != 0:
        raise CudaCellError("nvcc failed (exit %d):\n%s%s" % (r.returncode, r.stdout, r.stderr))
    if r.stderr.strip():
        sys.stderr.write(r.stderr)  # warnings
    os.replace(tmp_exe, exe)
    return exe, time.monotonic() - t0


def _pump(stream, out):
    # Line by line so long-running programs show progress as they go.
    for line in iter(stream.readline, ""):
        out.write(line)
        out.flush()
    stream.close()


def run_cuda_cell(line, cell):
    """`%%cuda [nvcc args] [-- program args]`."""
    args = shlex.split(line or "")
    prog_args = []
    if "--" in args:
        i = args.index("--")
        args, prog_args = args[:i], args[i + 1:]
    exe, compile_s = compile_cuda(cell, args)
    t0 = time.monotonic()
    p = subprocess.Popen([exe, *prog_args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         stdin=subprocess.DEVNULL, bufsize=1)
    pumps = [threading.Thread(target=_pump, args=(p.stdout, sys.stdout), daemon=True),
             threading.Thread(target=_pump, args=(p.stderr, sys.stderr), daemon=True)]
    for t in pumps:
        t.start()
    try:
        code = p.wait()
    except KeyboardInterrupt:
        # The notebook's interrupt: pass it on, then make sure the program is gone before re-raising.
        p.send_signal(signal.SIGINT)
        try:
            p.wait(2)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        raise
    finally:
        for t in pumps:
            t.join(5)
    last_run.clear()
    last_run.update(returncode=code, compile_s=round(compile_s, 3), run_s=round(time.monotonic() - t0, 3), binary=exe)
    if code != 0:
        what = "signal %d" % -code if code < 0 else "status %d" % code
        raise CudaCellError("CUDA program exited with %s" % what)
