"""The skill formats, one module each, in the order discovery tries them in a folder.

A new format is one new module with a ``SkillFormat`` (how its skills are found in a folder
and how one is read) and one line in ``FORMATS``.
"""

from __future__ import annotations

from retriever.load.formats.base import SkillFormat
from retriever.load.formats.skill_md import SKILL_MD, SkillMdFormat
from retriever.load.formats.spawner import (
    SPAWNER,
    SPAWNER_FLAT,
    SpawnerFlatFormat,
    SpawnerFolderFormat,
)

# In a folder, the first format that finds a skill decides: a spawner skill.yaml makes the
# folder a spawner skill, else a SKILL.md makes it an Agent Skill, else its <id>.yaml files
# are spawner skills of the flat layout.
FORMATS: tuple[SkillFormat, ...] = (SpawnerFolderFormat(), SkillMdFormat(), SpawnerFlatFormat())
BY_NAME = {f.name: f for f in FORMATS}

__all__ = ["BY_NAME", "FORMATS", "SKILL_MD", "SPAWNER", "SPAWNER_FLAT", "SkillFormat"]
