"""Find the skills under one or more roots, in every supported format.

Each folder is offered to the formats of ``load.formats`` in turn; the first that finds a
skill there decides. A folder that is a skill is not descended into: skill folders carry
references, scripts and examples whose YAML or Markdown files are not skills. Symbolic links
are never followed out of a root: nothing in a collection can make the retriever read
elsewhere (``source.checked``).
"""

from __future__ import annotations

import os
from pathlib import Path

from retriever.errors import SkillLoadError
from retriever.load.formats import FORMATS
from retriever.load.source import SkillSource, checked, display_path


def _sources_in(folder: Path, names: list[str], root: Path) -> tuple[list[SkillSource], bool]:
    """The skills written directly in ``folder``, and whether the folder is itself a skill."""
    for fmt in FORMATS:
        sources, is_skill = fmt.find(folder, names, root)
        if sources or is_skill:
            return sources, is_skill
    return [], False


def discover(roots: list[Path] | tuple[Path, ...]) -> list[SkillSource]:
    """List every skill under ``roots``, in a stable order (roots in order, then by path).

    Raises ``SkillLoadError`` for a root that does not exist or is not a folder; a root that
    holds no skills yields nothing here and is reported by the loader.
    """
    found: list[SkillSource] = []
    for root in roots:
        root = Path(root).expanduser()
        if not root.exists():
            raise SkillLoadError(f"skills root not found: {root} (pass an existing folder)")
        if not root.is_dir():
            raise SkillLoadError(f"skills root is not a folder: {root}")
        root = root.resolve()
        if display_path(root) != str(root):
            raise SkillLoadError(
                f"skills root {display_path(root)}: the path is not valid "
                "UTF-8; rename it or pass another root"
            )
        # followlinks=False: linked folders are not entered, so a link loop cannot hang the
        # walk and a link cannot lead out of the root.
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")))
            folder = Path(dirpath)
            sources, is_skill = _sources_in(folder, filenames, root)
            found.extend(checked(s) for s in sources)
            if is_skill:
                dirnames[:] = []
    return found
