"""`%gpu`: the attached GPU, this kernel's session and the transfer statistics, from the kernel-proxy."""
import os

from . import ctl

__all__ = ["gpu_report", "format_report"]


def _size(n):
    n = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0


def gpu_report():
    """{'status': rgpu/status, 'stats': rgpu/stats, 'inventory': rgpu/inventory or None} from the proxy."""
    rep = {"status": ctl.call("rgpu/status"), "stats": ctl.call("rgpu/stats"), "inventory": None}
    try:
        rep["inventory"] = ctl.call("rgpu/inventory", timeout=3.0)
    except ctl.ProxyError:
        pass  # only adds the memory size; the pool may not answer it
    return rep


def _device_line(dev, gpu_type=None, inventory=None):
    if not isinstance(dev, dict):
        # The proxy names the device; the pool's inventory knows its type and memory.
        if not dev:
            return "-"
        for t in (inventory or {}).get("types") or []:
            if t.get("name") == dev or (gpu_type and t.get("type") == gpu_type):
                return "%s (%s), %s" % (dev, t.get("type", "?"), _size(t.get("memory")))
        return str(dev)
    mem = dev.get("totalMem", dev.get("memory"))
    parts = ["%s (%s)" % (dev.get("name", "?"), dev.get("type", "?"))]
    if mem:
        parts.append(_size(mem))
    if "ccMajor" in dev:
        parts.append("cc %s.%s" % (dev["ccMajor"], dev.get("ccMinor", 0)))
    return ", ".join(parts)


def format_report(rep, pid=None):
    pid = os.getpid() if pid is None else pid
    st, stats = rep["status"] or {}, rep["stats"] or {}
    pool = st.get("pool") or {}
    lines = []
    sessions = st.get("sessions") or []
    mine = [s for s in sessions if s.get("pid") == pid]
    dev = (mine[0].get("device") if mine else None) or stats.get("device")
    stype = (mine[0].get("gpuType") if mine else None) or st.get("gpuType")
    lines.append("GPU        %s" % _device_line(dev, stype, rep.get("inventory")))
    lines.append("GPU type   %s" % (st.get("gpuType") or stats.get("gpuType") or "(server default)"))
    pool_state = "connected" if pool.get("connected") else "not connected"
    if pool.get("error"):
        pool_state += " (%s)" % pool["error"]
    # The embedded server's address is a private socket of the proxy's; "embedded" says what it is.
    where = "embedded (emulated, on this machine)" if pool.get("embedded") or not pool.get("url") else pool["url"]
    lines.append("pool       %s %s" % (where, pool_state))
    if mine:
        s = mine[0]
        q = " #%s in queue" % s["queuePosition"] if s.get("queuePosition") is not None else ""
        lines.append("session    %s (%s%s), this kernel pid %d" % (s.get("id"), s.get("state"), q, pid))
    else:
        lines.append("session    none for this kernel yet (pid %d; no CUDA call so far)" % pid)
    lines.append("sessions   %d on this proxy" % len(sessions))
    lines.append("to device  %s   from device %s" % (_size(stats.get("bytesToDevice")), _size(stats.get("bytesFromDevice"))))
    ops = stats.get("ops") or {}
    total = sum(int(v.get("count", 0)) for v in ops.values())
    top = sorted(ops.items(), key=lambda kv: -int(kv[1].get("count", 0)))[:6]
    lines.append("ops        %d total%s" % (total, ("  (" + ", ".join("%s %d" % (k, v.get("count", 0)) for k, v in top) + ")") if top else ""))
    rtt = stats.get("rtt") or {}
    if rtt.get("samples"):
        lines.append("round trip p50 %.3f ms, p99 %.3f ms, last %.3f ms (%d samples)" % (
            rtt.get("p50Ms", 0), rtt.get("p99Ms", 0), rtt.get("lastMs", 0), rtt["samples"]))
    elif st.get("rttMs") is not None:
        lines.append("round trip %.3f ms" % st["rttMs"])
    return "\n".join(lines)


def gpu_magic(line):
    """`%gpu` prints the report; `%gpu --json` returns the raw dicts."""
    rep = gpu_report()
    if line.strip() == "--json":
        return rep
    if line.strip():
        raise ValueError("usage: %gpu [--json]")
    print(format_report(rep))
    return None
