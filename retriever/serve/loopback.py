"""A minimal HTTP/1.1 client over one socket, for the command hook's calls to a local server.

``http.client`` (and ``urllib.request`` over it) imports the ``email`` package to parse
headers: about a quarter of the command hook's own start-up on every prompt. These calls
need one request and one reply of a known size from a server of ours, so a socket does:
``Connection: close``, the status line, the headers' ``Content-Length``, at most ``limit``
bytes of body. Only ``http://`` URLs (the discovery files' and the default's).
"""

from __future__ import annotations

import socket
import time


class LoopbackError(OSError):
    """No reply of the expected form: refused, timed out, too long, not HTTP."""


def request(
    url: str,
    method: str,
    target: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    timeout: float,
    limit: int,
) -> tuple[int, bytes]:
    """``(status, body)`` of ``method target`` at ``url`` (``http://host:port``), all within
    ``timeout`` seconds; ``LoopbackError`` when not, or when the body is over ``limit``."""
    host, port = _host_port(url)
    deadline = time.monotonic() + timeout
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=timeout) as sock:
            sock.sendall(data)
            received = bytearray()
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LoopbackError("timed out")
                sock.settimeout(left)
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
                if len(received) > limit + 16384:  # the body's limit and headers
                    raise LoopbackError(f"reply over {limit} bytes")
    except LoopbackError:
        raise
    except OSError as e:
        raise LoopbackError(str(e)) from e
    return _parse(bytes(received), limit)


def _host_port(url: str) -> tuple[str, int]:
    if not url.startswith("http://"):
        raise LoopbackError(f"not an http:// URL: {url[:80]}")
    authority = url[len("http://") :].split("/", 1)[0]
    host, sep, port = authority.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise LoopbackError(f"no host:port in {url[:80]}")
    return host, int(port)


def _parse(reply: bytes, limit: int) -> tuple[int, bytes]:
    head, sep, body = reply.partition(b"\r\n\r\n")
    if not sep:
        raise LoopbackError("not an HTTP reply")
    status_line, *header_lines = head.split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise LoopbackError("not an HTTP reply")
    length = None
    for line in header_lines:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"transfer-encoding":
            raise LoopbackError("a chunked reply")  # ours always say Content-Length
        if name.strip().lower() == b"content-length":
            if not value.strip().isdigit():
                raise LoopbackError("a bad Content-Length")
            length = int(value.strip())
    if length is None or len(body) < length:
        raise LoopbackError("a reply cut short")
    if length > limit:
        raise LoopbackError(f"reply over {limit} bytes")
    return int(parts[1]), body[:length]
