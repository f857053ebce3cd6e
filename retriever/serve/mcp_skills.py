"""The MCP Skills extension (SEP-2640, ``io.modelcontextprotocol/skills``) on ``retrieve mcp``
and ``/mcp``, as ``modelcontextprotocol/ext-skills`` ``specification/stable/skills.mdx``
says:

- every file of a skill is a resource ``skill://<skill-path>/<file-path>``; the skill path
  is the skill's id (one segment: the folder name, which the Agent Skills format makes its
  ``name``), ``SKILL.md`` is ``skill://<id>/SKILL.md``;
- ``skills/list`` (paginated, ``PAGE_SIZE`` skills a page, an opaque ``cursor``) and
  ``skills/get`` (``{"uri": ".../SKILL.md"}``) answer ``{uri, frontmatter, resources}``
  entries: the frontmatter as written, and every file's ``{uri, digest: "sha256:...",
  size}`` over the bytes ``resources/read`` returns; ``ttlMs`` and ``cacheScope`` as the
  stable spec requires; an unknown skill is ``-32602``;
- a ``SKILL.md`` skill's files are its folder's (hidden files, links leading out of the
  folder and files past the spec's 512 files / 16 MiB left out); a spawner skill has no
  ``SKILL.md``, so it gets one rendered from its YAML (``present.skill.skill_markdown``),
  whose frontmatter says so (``metadata.rendered-by``, ``metadata.source-format``), and
  that file alone.

The SDK (mcp 2.3) serves the new methods through ``Extension``/``MethodBinding``, and
declares ``capabilities.extensions`` on ``server/discover`` (protocol 2026-07-28); on a
``initialize`` handshake (2025-11-25 and older) it drops that field, whose schema has none,
so ``skills_middleware`` puts it back into the ``initialize`` result. It also answers
``resources/read`` of a skill's files itself, with each file's own MIME type (a resource
template of the SDK gives every match one); other URIs (``skill://ID``, the whole skill as
Markdown) go on to the server's own handlers.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

if TYPE_CHECKING:
    from retriever.api import SkillRetriever
    from retriever.skill import Skill

EXTENSION = "io.modelcontextprotocol/skills"
SCHEME = "skill://"
PAGE_SIZE = 100
TTL_MS = 60_000  # a reload (--watch) changes files; a host asks again within a minute
MAX_FILES = 512  # the spec's per-skill limits, which hosts must support
MAX_TOTAL_BYTES = 16 * 1024 * 1024
TEXT_TYPES = {".md": "text/markdown", ".yaml": "application/yaml", ".yml": "application/yaml"}


@dataclass(frozen=True)
class SkillFile:
    path: str  # relative to the skill's root, with "/"
    data: bytes
    mime_type: str

    def entry(self, root: str) -> dict[str, Any]:
        return {
            "uri": f"{root}/{self.path}",
            "digest": "sha256:" + hashlib.sha256(self.data).hexdigest(),
            "size": len(self.data),
        }


def skill_root(skill_id: str) -> str:
    return SCHEME + quote(skill_id, safe="")


def skill_md_uri(skill_id: str) -> str:
    return skill_root(skill_id) + "/SKILL.md"


def split_uri(uri: Any) -> tuple[str, str] | None:
    """``(skill id, file path)`` of ``skill://<id>/<file>``; ``None`` for anything else
    (``skill://ID``, the resource of the whole skill as Markdown, included)."""
    if not isinstance(uri, str) or not uri.startswith(SCHEME):
        return None
    root, sep, path = uri[len(SCHEME) :].partition("/")
    if not sep or not root or not path:
        return None
    return unquote(root), path


class SkillFiles:
    """The files of each skill of the served index, made once per index (a reload makes a
    new retriever, and the files are made again for it)."""

    def __init__(self, current: Callable[[], SkillRetriever]) -> None:
        self.current = current
        self._for: Any = None
        self._files: dict[str, tuple[dict[str, Any], list[SkillFile]]] = {}

    def served(self) -> SkillRetriever:
        """The index served now; while the first one is being built, an MCP error that says
        how far (``-32603``: the request was right, the server cannot answer it yet)."""
        from retriever.errors import IndexNotReadyError

        try:
            return self.current()
        except IndexNotReadyError as e:
            from mcp.shared.exceptions import MCPError
            from mcp_types import INTERNAL_ERROR

            raise MCPError(INTERNAL_ERROR, str(e)) from None

    def of(self, skill_id: str) -> tuple[dict[str, Any], list[SkillFile]]:
        """``(frontmatter, files)`` of a skill, ``KeyError`` for an id not served."""
        retriever = self.served()
        if retriever is not self._for:
            self._for, self._files = retriever, {}
        if skill_id not in self._files:
            from retriever.errors import UnknownSkillError

            try:
                skill = retriever.skill(skill_id)
            except UnknownSkillError:
                raise KeyError(skill_id) from None
            self._files[skill_id] = files_of(skill)
        return self._files[skill_id]

    def entry(self, skill_id: str) -> dict[str, Any]:
        frontmatter, files = self.of(skill_id)
        root = skill_root(skill_id)
        return {
            "uri": f"{root}/SKILL.md",
            "frontmatter": frontmatter,
            "resources": [f.entry(root) for f in files],
        }

    def ids(self) -> list[str]:
        return [s.id for s in self.served().skills]


def files_of(skill: Skill) -> tuple[dict[str, Any], list[SkillFile]]:
    """A skill's frontmatter and files, ``SKILL.md`` first."""
    if skill.format == "skill-md" and skill.path and Path(skill.path).name == "SKILL.md":
        try:
            return _folder_files(skill, Path(skill.path))
        except OSError:
            pass  # gone since the build: the rendering stands in for it
    return _rendered(skill)


def _folder_files(skill: Skill, skill_md: Path) -> tuple[dict[str, Any], list[SkillFile]]:
    data = skill_md.read_bytes()
    frontmatter = _frontmatter(data) or {"name": skill.id, "description": skill.description}
    files = [SkillFile("SKILL.md", data, "text/markdown")]
    folder = skill_md.parent
    real = folder.resolve()
    total = len(data)
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.startswith(".") or path == skill_md:
                continue
            try:
                st = path.lstat()
                if not stat.S_ISREG(st.st_mode) or real not in path.resolve().parents:
                    continue
                if len(files) >= MAX_FILES or total + st.st_size > MAX_TOTAL_BYTES:
                    return frontmatter, files  # the spec's limits: what fits is served
                content = path.read_bytes()
            except OSError:
                continue
            total += len(content)
            relative = path.relative_to(folder).as_posix()
            files.append(SkillFile(relative, content, _mime(name)))
    return frontmatter, files


def _frontmatter(data: bytes) -> dict[str, Any] | None:
    """The YAML frontmatter of a ``SKILL.md`` as written, JSON-safe; ``None`` when there
    is none a safe loader reads as a mapping."""
    import json

    import yaml

    text = data.decode("utf-8", "replace")
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    if end < 0:
        return None
    try:
        loaded = yaml.safe_load(text[3:end])
    except yaml.YAMLError:
        return None
    if not isinstance(loaded, dict):
        return None
    # dates and other YAML types as strings: the frontmatter travels as JSON
    result: dict[str, Any] = json.loads(json.dumps(loaded, default=str))
    return result


def _rendered(skill: Skill) -> tuple[dict[str, Any], list[SkillFile]]:
    """A ``SKILL.md`` made from a spawner skill, saying so in its frontmatter."""
    import yaml

    from retriever.present.skill import skill_markdown

    frontmatter = {
        "name": skill.id,
        "description": " ".join(skill.description.split())[:1024] or skill.name,
        "metadata": {
            "rendered-by": "skill-retriever",
            "source-format": skill.format,
            "note": "rendered from the skill's YAML files; the skill has no SKILL.md",
        },
    }
    head = yaml.safe_dump(frontmatter, sort_keys=False, allow_unicode=True, width=1000)
    text = f"---\n{head}---\n\n{skill_markdown(skill)}"
    data = text.encode("utf-8", "replace")
    return frontmatter, [SkillFile("SKILL.md", data, "text/markdown")]


def _mime(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return TEXT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _invalid(message: str) -> Exception:
    from mcp.shared.exceptions import MCPError
    from mcp_types import INVALID_PARAMS

    return MCPError(INVALID_PARAMS, message)


def _cacheable(result: dict[str, Any]) -> dict[str, Any]:
    # the stable spec's CacheableResult: private, the collection is the user's
    return {**result, "ttlMs": TTL_MS, "cacheScope": "private"}


def list_page(files: SkillFiles, cursor: str | None) -> dict[str, Any]:
    """One page of ``skills/list``: ``PAGE_SIZE`` skills from the cursor (an offset, opaque
    to the client), ``nextCursor`` only when more follow."""
    ids = files.ids()
    start = 0
    if cursor is not None:
        try:
            start = int(base64.urlsafe_b64decode(cursor.encode()).decode())
        except (ValueError, UnicodeError):
            raise _invalid(f"not a cursor of this server: {cursor[:80]!r}") from None
        if not 0 <= start <= len(ids):
            raise _invalid(f"not a cursor of this server: {cursor[:80]!r}")
    page = ids[start : start + PAGE_SIZE]
    result: dict[str, Any] = {"skills": [files.entry(i) for i in page]}
    if start + PAGE_SIZE < len(ids):
        result["nextCursor"] = base64.urlsafe_b64encode(str(start + PAGE_SIZE).encode()).decode()
    return _cacheable(result)


def get_skill(files: SkillFiles, uri: Any) -> dict[str, Any]:
    parts = split_uri(uri)
    if parts is None or parts[1] != "SKILL.md":
        raise _invalid(f"No skill is served at {str(uri)[:200]}")
    try:
        return _cacheable({"skill": files.entry(parts[0])})
    except KeyError:
        raise _invalid(f"No skill is served at {str(uri)[:200]}") from None


def read_file(files: SkillFiles, uri: Any) -> dict[str, Any] | None:
    """The ``resources/read`` result of a skill file; ``None`` when ``uri`` is not of that
    form (the server's own handlers answer it); ``-32602`` for a file not served."""
    parts = split_uri(uri)
    if parts is None:
        return None
    skill_id, path = parts
    try:
        _, skill_files = files.of(skill_id)
    except KeyError:
        raise _invalid(f"Resource not found: {str(uri)[:200]}") from None
    for f in skill_files:
        if f.path == path:
            item: dict[str, Any] = {"uri": uri, "mimeType": f.mime_type}
            if f.mime_type.startswith("text/") or f.mime_type == "application/yaml":
                try:
                    item["text"] = f.data.decode("utf-8")
                    return {"contents": [item]}
                except UnicodeDecodeError:
                    pass
            item["blob"] = base64.b64encode(f.data).decode()
            return {"contents": [item]}
    raise _invalid(f"Resource not found: {str(uri)[:200]}")


def skills_extension(current: Callable[[], SkillRetriever]) -> Any:
    """The ``Extension`` to pass to ``MCPServer(extensions=[...])``."""
    import anyio.to_thread
    import mcp_types as types
    from mcp.server.extension import Extension, MethodBinding

    files = SkillFiles(current)

    class GetSkillParams(types.RequestParams):
        uri: str

    async def list_skills(ctx: Any, params: types.PaginatedRequestParams) -> dict[str, Any]:
        # files are read and hashed the first time a page names them: off the event loop
        return await anyio.to_thread.run_sync(list_page, files, params.cursor)

    async def get(ctx: Any, params: GetSkillParams) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(get_skill, files, params.uri)

    class Skills(Extension):
        identifier = EXTENSION

        def __init__(self) -> None:
            self.files = files  # the middleware reads the same files

        def methods(self) -> list[MethodBinding]:
            return [
                MethodBinding("skills/list", types.PaginatedRequestParams, list_skills),
                MethodBinding("skills/get", GetSkillParams, get),
            ]

    return Skills()


def skills_middleware(extension: Any) -> Callable[..., Any]:
    """The server middleware: the extension declared on a legacy ``initialize`` too, and
    ``resources/read`` of a skill's files answered with their own MIME types."""
    import anyio.to_thread

    files: SkillFiles = extension.files

    async def middleware(ctx: Any, call_next: Any) -> Any:
        if ctx.method == "resources/read":
            uri = (ctx.params or {}).get("uri")
            if split_uri(uri) is not None:
                return await anyio.to_thread.run_sync(read_file, files, uri)
        result = await call_next(ctx)
        if ctx.method == "initialize" and isinstance(result, dict):
            capabilities = result.get("capabilities")
            if isinstance(capabilities, dict) and "extensions" not in capabilities:
                extensions = {EXTENSION: extension.settings()}
                result = {**result, "capabilities": {**capabilities, "extensions": extensions}}
        return result

    return middleware
