"""skill-retriever: find the right agent skills for a task.

The package reads skill collections (spawner ``skill.yaml`` folders, the flat ``<id>.yaml``
layout and Agent Skills ``SKILL.md``), indexes several texts per skill with a sentence
embedding model in FAISS, and answers queries with ranked skills, their best patterns and the
handoffs their rules call for.

Importing the package is cheap: numpy, FAISS and sentence-transformers load only when an index
is built or searched.
"""

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retriever.api import SkillRetriever
    from retriever.errors import (
        IndexError_,
        IndexWriteError,
        ModelError,
        QueryError,
        RetrieverError,
        SkillLoadError,
        StaleIndexError,
        UnknownSkillError,
    )
    from retriever.index.embed import Embedder
    from retriever.present.results import (
        Answer,
        Handoff,
        Match,
        PatternHit,
        SearchResult,
        SkillHit,
    )
    from retriever.search.rank import ScoringConfig
    from retriever.skill import (
        AntiPattern,
        Check,
        HandoffRule,
        LoadProblem,
        LoadReport,
        Pattern,
        SharpEdge,
        Skill,
    )

# Where each public name lives. They are imported on first use (PEP 562), not with the
# package: `retrieve hook` imports modules of this package on every prompt, and importing
# the API with them (the loaders, YAML, the index tables) took most of its start-up.
_HOMES = {
    "SkillRetriever": "retriever.api",
    "Embedder": "retriever.index.embed",
    "ScoringConfig": "retriever.search.rank",
    **dict.fromkeys(
        (
            "IndexError_",
            "IndexWriteError",
            "ModelError",
            "QueryError",
            "RetrieverError",
            "SkillLoadError",
            "StaleIndexError",
            "UnknownSkillError",
        ),
        "retriever.errors",
    ),
    **dict.fromkeys(
        ("Answer", "Handoff", "Match", "PatternHit", "SearchResult", "SkillHit"),
        "retriever.present.results",
    ),
    **dict.fromkeys(
        (
            "AntiPattern",
            "Check",
            "HandoffRule",
            "LoadProblem",
            "LoadReport",
            "Pattern",
            "SharpEdge",
            "Skill",
        ),
        "retriever.skill",
    ),
}


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'retriever' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))


__version__ = "0.1.0"

# What users need: the retriever, what a search returns, what a skill is, the ranking's
# numbers, the embedder interface (for another model runtime), and the errors.
__all__ = [
    "Answer",
    "AntiPattern",
    "Check",
    "Embedder",
    "Handoff",
    "HandoffRule",
    "IndexError_",
    "IndexWriteError",
    "LoadProblem",
    "LoadReport",
    "Match",
    "ModelError",
    "Pattern",
    "PatternHit",
    "QueryError",
    "RetrieverError",
    "ScoringConfig",
    "SearchResult",
    "SharpEdge",
    "Skill",
    "SkillHit",
    "SkillLoadError",
    "SkillRetriever",
    "StaleIndexError",
    "UnknownSkillError",
    "__version__",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
