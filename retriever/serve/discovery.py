"""Finding the ``retrieve serve`` of an index, and proving it is that server.

A running server leaves one file of its own under ``index_home()/servers/<key>/`` (``key``
names the index folder; never inside the index folder, which may be read-only), mode 0600
since it may hold the token, and removes it when it stops. Several servers of one index
each have their own file, so stopping any of them leaves the others findable.

A file is a claim, not a proof: after a ``kill -9`` or a reboot it names a pid and a port
that another process may hold now, perhaps a server of another collection. So before a
client uses a server or sends it a token, it asks ``GET /identity?nonce=N`` (no token)
and checks the answer's ``proof``: HMAC-SHA256 of the nonce under the random secret the
server wrote into its file. Only the process that wrote the file knows that secret; a
server of another index, or anything else on the port, cannot answer it.

Only the standard library is imported: the hook reads these files on every prompt.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

IDENTITY_PATH = "/identity"
# What /identity answers at most; a reply over this is not a server of ours.
MAX_IDENTITY_BYTES = 4096


@dataclass(frozen=True)
class RunningServer:
    """What a discovery file says about a ``retrieve serve`` process."""

    url: str
    pid: int
    index: str
    token: str | None
    secret: str
    path: Path
    started_at: str = ""
    data: dict[str, Any] = field(default_factory=dict, repr=False)  # the file as read


def _index_key(index_dir: Path) -> str:
    digest = hashlib.sha256(str(Path(index_dir).resolve()).encode(errors="surrogateescape"))
    return digest.hexdigest()[:16]


def servers_folder(index_dir: Path) -> Path:
    """The folder where the servers of ``index_dir`` announce themselves."""
    from retriever.paths import index_home

    return index_home() / "servers" / _index_key(index_dir)


def proof(secret: str, nonce: str) -> str:
    """What a server holding ``secret`` answers to ``nonce``."""
    return hmac.new(secret.encode(), nonce.encode(), hashlib.sha256).hexdigest()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    except (OverflowError, ValueError):  # not a pid at all
        return False
    return True


def _read(path: Path) -> RunningServer | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return RunningServer(
            url=str(data["url"]),
            pid=int(data["pid"]),
            index=str(data["index"]),
            token=data.get("token") or None,
            secret=str(data["secret"]),
            path=path,
            started_at=str(data.get("started_at", "")),
            data=data,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def announced_servers(index_dir: Path) -> list[RunningServer]:
    """The servers that say they serve ``index_dir`` and whose process is still there,
    newest first. Claims only: ``verify`` each before use."""
    folder = servers_folder(index_dir)
    try:
        paths = sorted(folder.glob("*.json"))
    except OSError:
        return []
    expected = str(Path(index_dir).resolve())
    found = [s for p in paths if (s := _read(p)) is not None]
    found = [s for s in found if s.index == expected and alive(s.pid)]
    return sorted(found, key=lambda s: (s.started_at, s.pid), reverse=True)


def verify(server: RunningServer, timeout: float) -> bool:
    """Whether the process answering at ``server.url`` is the one that wrote its file: it
    answers a fresh nonce with the proof only that process can make. Sends no token."""
    from retriever.serve.loopback import LoopbackError, request

    nonce = secrets.token_hex(16)
    try:
        status, body = request(
            server.url,
            "GET",
            f"{IDENTITY_PATH}?nonce={nonce}",
            timeout=timeout,
            limit=MAX_IDENTITY_BYTES,
        )
        if status != 200:
            return False
        answer = json.loads(body)
    except (LoopbackError, ValueError):
        return False
    if not isinstance(answer, dict) or not isinstance(answer.get("proof"), str):
        return False
    return hmac.compare_digest(answer["proof"], proof(server.secret, nonce))


def find_server(index_dir: Path, timeout: float = 1.0) -> RunningServer | None:
    """The newest running server of ``index_dir`` that proves it is the one its file
    names, or ``None``."""
    deadline = time.monotonic() + timeout
    for server in announced_servers(index_dir):
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        if verify(server, left):
            return server
    return None


def identity(secret: str, nonce: str) -> dict[str, Any]:
    """The server's answer to ``GET /identity?nonce=...``: the proof and nothing that
    needs the token (no paths, no counts)."""
    return {"service": "skill-retriever", "proof": proof(secret, nonce[:256])}


def _connect_host(host: str) -> str:
    """The address a local client uses to reach a server bound to ``host``."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@contextlib.contextmanager
def announced(
    index_dir: Path, host: str, port: int, token: str | None, secret: str
) -> Iterator[str]:
    """Write this server's discovery file while it runs; remove it after. Yields the URL."""
    folder = servers_folder(index_dir)
    url = f"http://{_connect_host(host)}:{port}"
    data = {
        "url": url,
        "host": host,
        "port": port,
        "pid": os.getpid(),
        "index": str(Path(index_dir).resolve()),
        "token": token,
        "secret": secret,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = folder / f"{os.getpid()}-{secret[:8]}.json"
    written = False
    try:
        _write_private(path, data)
        written = True
    except OSError as e:  # a read-only home: the server still serves, the hook won't find it
        log.warning("cannot write %s (%s); `retrieve hook` will not find this server", path, e)
    try:
        yield url
    finally:
        if written:
            with contextlib.suppress(OSError):
                path.unlink()
        _remove_dead(folder)


def _remove_dead(folder: Path) -> None:
    """Remove the files of servers whose process is gone (killed, or the machine rebooted):
    tidying only; readers skip them anyway."""
    with contextlib.suppress(OSError):
        for path in folder.glob("*.json"):
            server = _read(path)
            if server is not None and not alive(server.pid):
                with contextlib.suppress(OSError):
                    path.unlink()


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Write ``path`` atomically, readable by its owner only (its folder too)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)
