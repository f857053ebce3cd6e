"""What a skill format declares: how its skills are found in a folder, and how one is read."""

from __future__ import annotations

import abc
from pathlib import Path

from retriever.load.source import SkillSource
from retriever.skill import LoadProblem, Skill


class SkillFormat(abc.ABC):
    """One way of writing skills. ``name`` is what ``Skill.format`` and
    ``SkillSource.format`` hold."""

    name: str

    @abc.abstractmethod
    def find(self, folder: Path, names: list[str], root: Path) -> tuple[list[SkillSource], bool]:
        """The skills of this format written directly in ``folder`` (whose entries are
        ``names``), and whether the folder is itself a skill (then it is not descended
        into: skill folders carry references and examples that are not skills)."""

    @abc.abstractmethod
    def parse(self, source: SkillSource, problems: list[LoadProblem]) -> Skill:
        """Read one skill; ``FileProblem`` when its main file is unusable. Anything odd but
        survivable goes into ``problems``."""
