"""JSON-RPC client for the kernel-proxy's control socket ($REMOTE_GPU_PROXY.ctl).

Framing is vscode-jsonrpc's: ``Content-Length: N\\r\\n\\r\\n`` then N bytes of UTF-8 JSON. The proxy may
push ``rgpu/statsChanged`` notifications on any connection, so replies are matched by id.
"""
import itertools
import json
import os
import socket

__all__ = ["ProxyError", "control_socket", "call"]

_ids = itertools.count(1)


class ProxyError(RuntimeError):
    """The proxy is unreachable or answered with a JSON-RPC error."""


def control_socket():
    proxy = os.environ.get("REMOTE_GPU_PROXY")
    if not proxy:
        raise ProxyError("REMOTE_GPU_PROXY is not set: this kernel was not started by the remote-gpu launcher")
    return proxy + ".ctl"


def _read_message(f):
    length = None
    while True:
        line = f.readline()
        if not line:
            raise ProxyError("kernel-proxy closed the control connection")
        line = line.strip()
        if not line:
            break
        name, _, value = line.decode("ascii", "replace").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length is None:
        raise ProxyError("kernel-proxy sent a message without Content-Length")
    body = f.read(length)
    if len(body) != length:
        raise ProxyError("kernel-proxy closed the control connection mid-message")
    return json.loads(body)


def call(method, params=None, timeout=10.0, path=None):
    """Sends one request and returns its result (raises ProxyError on failure)."""
    path = path or control_socket()
    rid = next(_ids)
    msg = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        msg["params"] = params
    body = json.dumps(msg).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            with s.makefile("rb") as f:
                while True:
                    reply = _read_message(f)
                    if reply.get("id") != rid:
                        continue  # a notification such as rgpu/statsChanged
                    if "error" in reply:
                        err = reply["error"]
                        raise ProxyError("%s failed: %s" % (method, err.get("message", err)))
                    return reply.get("result")
    except (OSError, socket.timeout, ValueError) as e:
        raise ProxyError("cannot reach the kernel-proxy at %s: %s" % (path, e)) from e
