"""Step 1 of the flow: find skill files under roots and normalise them into ``Skill`` values."""

from retriever.load.collection import load_collection
from retriever.load.discover import SkillSource, discover

__all__ = ["SkillSource", "discover", "load_collection"]
