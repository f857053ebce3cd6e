"""Step 1 of the flow: find skill files under roots and normalise them into ``Skill`` values.

``discover`` walks the roots and asks each format (``formats``) what it finds; ``collection``
parses every source and reports problems; ``source``, ``files``, ``ids`` and ``shapes`` are
the safe reading and normalising every format shares.
"""

from retriever.load.collection import corpus_fingerprint, load_collection, load_sources
from retriever.load.discover import discover
from retriever.load.source import SkillSource

__all__ = ["SkillSource", "corpus_fingerprint", "discover", "load_collection", "load_sources"]
