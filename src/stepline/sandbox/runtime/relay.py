"""A networked job's way out: 127.0.0.1:3128 in its own namespace, relayed to the egress
proxy's Unix socket, where the allow-list is enforced (see `stepline.sandbox.egress`).

The relay runs in the job's own process, as threads: it only carries bytes, so code that
tampers with it gains nothing the proxy would not grant anyway.
"""

from __future__ import annotations

import os
import socket
import threading

EGRESS_DIR = "/run/stepline"
"""Where the egress proxy's socket appears in the sandbox (operator allowed network)."""
EGRESS_SOCKET = f"{EGRESS_DIR}/egress.sock"
RELAY_PORT = 3128
_STACK_BYTES = 256 * 1024
"""The relay's threads need little stack; the job's memory limit counts what they reserve."""
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def bring_loopback_up() -> None:
    """Sets `lo` up in this (new) network namespace; needs CAP_NET_ADMIN over it."""
    import fcntl
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, _SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | _IFF_UP))


def start_relay() -> None:
    """Listens on 127.0.0.1:RELAY_PORT and tells HTTP clients to use it as their proxy."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", RELAY_PORT))
    listener.listen(64)
    _thread(_accept, listener)
    proxy = f"http://127.0.0.1:{RELAY_PORT}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        os.environ[name] = os.environ[name.lower()] = proxy
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = ""


def _thread(target: object, *args: object) -> None:
    previous = threading.stack_size(_STACK_BYTES)
    try:
        threading.Thread(target=target, args=args, daemon=True).start()  # type: ignore[arg-type]
    finally:
        threading.stack_size(previous)


def _accept(listener: socket.socket) -> None:
    while True:
        client, _ = listener.accept()
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(EGRESS_SOCKET)
        except OSError:
            client.close()
            upstream.close()
            continue
        _thread(_splice, client, upstream)
        _thread(_splice, upstream, client)


def _splice(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(1 << 16):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
