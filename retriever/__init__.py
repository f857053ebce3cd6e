"""skill-retriever: find the right agent skills for a task.

The package reads skill collections (spawner ``skill.yaml`` folders, the flat ``<id>.yaml``
layout and Agent Skills ``SKILL.md``), indexes several texts per skill with a sentence
embedding model in FAISS, and answers queries with ranked skills, their best patterns and the
handoffs their rules call for.

Importing the package is cheap: numpy, FAISS and sentence-transformers load only when an index
is built or searched.
"""

import logging

from retriever.api import SkillRetriever
from retriever.errors import (
    IndexError_,
    IndexWriteError,
    QueryError,
    RetrieverError,
    SkillLoadError,
    StaleIndexError,
)
from retriever.present.results import Handoff, Match, PatternHit, SearchResult, SkillHit
from retriever.skill import AntiPattern, HandoffRule, LoadProblem, LoadReport, Pattern, Skill

__version__ = "0.1.0"

__all__ = [
    "AntiPattern",
    "Handoff",
    "HandoffRule",
    "IndexError_",
    "IndexWriteError",
    "LoadProblem",
    "LoadReport",
    "Match",
    "Pattern",
    "PatternHit",
    "QueryError",
    "RetrieverError",
    "SearchResult",
    "Skill",
    "SkillHit",
    "SkillLoadError",
    "SkillRetriever",
    "StaleIndexError",
    "__version__",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
