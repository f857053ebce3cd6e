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


# Where people keep their skills, one (label, folder) per agent's user-level skills folder,
# each as that agent's own docs name it (README, "Every agent's skill folders"). Used when
# no --skills is given: those that exist, in this order (the first root wins a duplicate id).
USER_SKILL_ROOTS = (
    ("spawner", "~/.spawner/skills"),
    ("Claude Code", "$CLAUDE_CONFIG_DIR/skills"),  # ~/.claude unless CLAUDE_CONFIG_DIR is set
    ("Codex, Gemini CLI, Cursor, OpenCode", "~/.agents/skills"),
    ("Gemini CLI", "~/.gemini/skills"),
    ("Cursor", "~/.cursor/skills"),
    ("OpenCode", "$XDG_CONFIG_HOME/opencode/skills"),  # ~/.config unless set
    ("Codex (legacy), Cursor", "~/.codex/skills"),
)
# The same agents' project-level folders, looked for under a hook event's `cwd` and its
# parents up to the repository root (Claude Code, Codex and OpenCode walk up that far).
PROJECT_SKILL_DIRS = (
    ".claude/skills",
    ".agents/skills",
    ".gemini/skills",
    ".cursor/skills",
    ".opencode/skills",
    ".codex/skills",
)
# A project folder this deep below the repository root is not walked further up than that.
MAX_PROJECT_DEPTH = 32


def _claude_home() -> Path:
    return Path(os.environ.get("CLAUDE_CONFIG_DIR") or "~/.claude").expanduser()


def _expand(pattern: str) -> Path:
    if pattern.startswith("$CLAUDE_CONFIG_DIR/"):
        return _claude_home() / pattern.split("/", 1)[1]
    if pattern.startswith("$XDG_CONFIG_HOME/"):
        config = os.environ.get("XDG_CONFIG_HOME") or "~/.config"
        return Path(config).expanduser() / pattern.split("/", 1)[1]
    return Path(pattern).expanduser()


def user_skill_folders() -> list[tuple[str, Path]]:
    """Every user-level skills folder an agent reads, as ``(agent, folder)``, whether it
    exists or not: the fixed ones, then each installed Claude Code plugin's ``skills/``."""
    return [(label, _expand(p)) for label, p in USER_SKILL_ROOTS] + [
        ("Claude Code plugin " + name, folder) for name, folder in plugin_skill_folders()
    ]


def plugin_skill_folders() -> list[tuple[str, Path]]:
    """``(plugin id, <install path>/skills)`` of each Claude Code plugin installed for the
    user and not disabled.

    Claude Code keeps each installed version under ``plugins/cache/<marketplace>/<plugin>/
    <version>/`` and a plugin's skills in its ``skills/`` folder (plugins-reference). Which
    version is installed is read from ``plugins/installed_plugins.json`` (``{"plugins":
    {"name@marketplace": [{"scope", "installPath", ...}]}}``, a format users report, not
    documented), dropping plugins ``enabledPlugins`` in ``settings.json`` turns off; without
    that file, the newest version folder of each cached plugin."""
    import json

    home = _claude_home()
    plugins = Path(os.environ.get("CLAUDE_CODE_PLUGIN_CACHE_DIR") or home / "plugins")
    enabled: dict = {}
    try:
        settings = json.loads((home / "settings.json").read_text(encoding="utf-8"))
        if isinstance(settings, dict) and isinstance(settings.get("enabledPlugins"), dict):
            enabled = settings["enabledPlugins"]
    except (OSError, ValueError):
        pass
    found: list[tuple[str, Path]] = []
    try:
        installed = json.loads((plugins / "installed_plugins.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        installed = None
    if isinstance(installed, dict) and isinstance(installed.get("plugins"), dict):
        for name, records in installed["plugins"].items():
            records = records if isinstance(records, list) else [records]
            for record in records:
                if not isinstance(record, dict) or enabled.get(name) is False:
                    continue
                if record.get("scope", "user") != "user" or not record.get("installPath"):
                    continue  # a project-scope install belongs to that project only
                found.append((str(name), Path(str(record["installPath"])) / "skills"))
    else:
        for plugin in sorted((plugins / "cache").glob("*/*")):
            versions = [v for v in plugin.iterdir() if v.is_dir()] if plugin.is_dir() else []
            name = f"{plugin.name}@{plugin.parent.name}"
            if versions and enabled.get(name) is not False:
                newest = max(versions, key=lambda v: v.stat().st_mtime)
                found.append((name, newest / "skills"))
    return found


def default_skill_roots() -> list[Path]:
    """The user-level skill folders of every agent (``user_skill_folders``) that exist, each
    once, else the bundled collection."""
    found: list[Path] = []
    for _, folder in user_skill_folders():
        if folder.is_dir() and all(folder.resolve() != f.resolve() for f in found):
            found.append(folder)
    return found or [bundled_skills_dir()]


def project_skill_roots(cwd: PathArg | None, exclude: Sequence[Path] = ()) -> list[Path]:
    """The project's own skill folders for a hook event's ``cwd``: each of
    ``PROJECT_SKILL_DIRS`` in ``cwd`` and every parent up to the repository root (the
    nearest folder holding ``.git``; just ``cwd`` outside a repository), nearest first,
    resolved, without those in ``exclude`` (the user's roots: ``~`` as a project is the
    user's own folders). ``[]`` for no ``cwd``, a relative one, or one that is no folder."""
    if not isinstance(cwd, (str, PathLike)) or not str(cwd) or "\0" in str(cwd):
        return []
    start = Path(cwd)
    if not start.is_absolute():
        return []
    try:
        start = start.resolve()
        if not start.is_dir():
            return []
    except (OSError, RuntimeError):
        return []
    chain = [start]
    for parent in start.parents:
        if len(chain) > MAX_PROJECT_DEPTH or _is_repo_root(chain[-1]):
            break
        chain.append(parent)
    if not _is_repo_root(chain[-1]):
        chain = [start]  # not in a repository: the folder the agent runs in, alone
    seen = {Path(p).resolve() for p in exclude}
    found: list[Path] = []
    for folder in chain:
        for name in PROJECT_SKILL_DIRS:
            candidate = folder / name
            try:
                if not candidate.is_dir():
                    continue
                real = candidate.resolve()
            except (OSError, RuntimeError):
                continue
            if real not in seen:
                seen.add(real)
                found.append(real)
    return found


def _is_repo_root(folder: Path) -> bool:
    try:
        return (folder / ".git").exists()
    except OSError:
        return False


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
