"""Where things are by default: the bundled collection and the index folders."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

from retriever.errors import SkillLoadError

PathArg = str | PathLike[str]

_PACKAGE = Path(__file__).resolve().parent
ENV_HOME = "SKILL_RETRIEVER_HOME"


def bundled_skills_dir() -> Path:
    """The collection shipped with the package (inside a wheel) or beside it (a checkout)."""
    inside = _PACKAGE / "bundled_skills"
    return inside if inside.is_dir() else _PACKAGE.parent / "skills"


# Where people keep their skills; used when no --skills is given and at least one exists.
USER_SKILL_ROOTS = ("~/.spawner/skills", "~/.claude/skills")


def default_skill_roots() -> list[Path]:
    """``~/.spawner/skills`` and ``~/.claude/skills`` that exist, else the bundled collection."""
    found = [Path(p).expanduser() for p in USER_SKILL_ROOTS]
    found = [p for p in found if p.is_dir()]
    return found or [bundled_skills_dir()]


def _source_checkout_index() -> Path | None:
    """``<repo>/index`` when running from a source checkout of this project."""
    repo = _PACKAGE.parent
    pyproject = repo / "pyproject.toml"
    if (repo / "index").is_dir() and pyproject.is_file() and os.access(repo / "index", os.W_OK):
        try:
            if 'name = "skill-retriever"' in pyproject.read_text(encoding="utf-8"):
                return repo / "index"
        except OSError:
            return None
    return None


def index_home() -> Path:
    """Where index folders go unless ``--index`` says otherwise.

    ``$SKILL_RETRIEVER_HOME`` if set; else ``index/`` of a source checkout; else the user's
    cache folder (``$XDG_CACHE_HOME/skill-retriever``, or ``~/.cache/skill-retriever``).
    Never inside site-packages.
    """
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).expanduser()
    checkout = _source_checkout_index()
    if checkout is not None:
        return checkout
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "skill-retriever"


def default_index_dir(roots: list[Path] | tuple[Path, ...], model_id: str) -> Path:
    """One folder per set of roots and model, named so a person can tell them apart."""
    key = "\n".join([model_id, *(str(Path(r).resolve()) for r in roots)])
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    slug = "+".join(Path(r).resolve().name for r in roots)[:60] or "skills"
    slug = re.sub(r"[^A-Za-z0-9._+-]", "_", slug)
    return index_home() / f"{slug}-{digest}"


def named_roots(skills: PathArg | Sequence[PathArg] | None) -> list[Path]:
    """The skills roots as named, not resolved: those given (each must be a folder, or a
    link to one), made absolute, or, for ``None``, the default roots. A watcher keeps these:
    a root that is a link switched to another folder (an atomic deploy) is seen only by
    resolving the name again."""
    if skills is None:
        return [r.absolute() for r in default_skill_roots()]
    if isinstance(skills, (str, PathLike)):
        skills = [skills]
    roots = [Path(s).expanduser() for s in skills]
    if not roots:
        raise SkillLoadError("no skills roots given")
    for r in roots:
        if not r.exists():
            raise SkillLoadError(f"skills root not found: {r}")
        if not r.is_dir():
            raise SkillLoadError(f"skills root is not a folder: {r}")
    return [r.absolute() for r in roots]


def index_folder(
    roots: list[Path] | tuple[Path, ...], model_id: str, index_dir: PathArg | None = None
) -> Path:
    """The index folder a search of ``roots`` with ``model_id`` uses: ``index_dir`` when
    given (``--index``), else the default one (``default_index_dir``). The one place this
    is decided: the API, ``doctor`` and the hook must agree on it."""
    if index_dir:
        return Path(index_dir).expanduser()
    return default_index_dir(roots, model_id)


def resolve_roots(skills: PathArg | Sequence[PathArg] | None) -> list[Path]:
    """The skills roots to read, resolved: those named (each must be a folder), or, for
    ``None``, the default roots (``default_skill_roots``), as the CLI takes them."""
    return [r.resolve() for r in named_roots(skills)]
