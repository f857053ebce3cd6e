"""``retrieve eval --self``: how well a collection's own questions find their skills.

Every skill's validation messages, sharp edges (their symptoms and situation),
``receives_from`` contexts and, in a SKILL.md, the lines of its "When to Use" sections are
questions whose right answer is known: the skill itself (``authoring.questions``). Each is
asked of an index that does not hold it: the items are split into ``folds`` by a hash of
their place, and for each fold the documents of its items are left out (vectors and BM25
alike, ``index.build.subset_index``) before its questions are ranked. Vectors come from the
opened index and the questions are embedded once, so a fold costs a vector index and a BM25
build, not an embedding pass.

Per skill and overall: R@1, R@5, MRR@10; the **confusion pairs** (for skill A, the other
skills that rank first on A's questions, how often, and one example each); the skills
nothing reaches (none of their questions ranks them first) and the skills that take the
most questions belonging to others.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from retriever.authoring.evaluate import mean_metrics, query_metrics
from retriever.authoring.questions import Question, collection_questions
from retriever.index.embed import Embedder
from retriever.search.rank import ScoringConfig

if TYPE_CHECKING:
    import numpy as np

    from retriever.index.tables import SkillIndex
    from retriever.skill import Skill

DEFAULT_FOLDS = 5
K = 10
METRICS = ("R@1", "R@5", "MRR@10")


# The collection's own questions (``authoring.questions``), under the names this module
# has always given them.
SelfQuestion = Question


def self_questions(skills: Sequence[Skill]) -> list[Question]:
    return collection_questions(skills)


def fold_of(q: SelfQuestion, folds: int) -> int:
    """The fold of a question's item (every question of one item shares it)."""
    key = f"{q.skill_id}\0{q.field}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") % folds


class KnownVectors(Embedder):
    """An embedder that answers texts embedded beforehand from memory, and the rest with
    the model (the questions are embedded once, in one batch)."""

    def __init__(self, inner: Embedder, texts: Sequence[str], vectors: np.ndarray) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self._known = dict(zip(texts, vectors, strict=True))

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        import numpy as np

        if texts and all(t in self._known for t in texts):
            return np.stack([self._known[t] for t in texts])
        return self.inner.encode(texts, progress=progress)


@dataclass
class SkillScore:
    skill_id: str
    questions: int
    metrics: dict[str, float]
    confused_with: list[dict[str, Any]]  # {skill, count, example}, most often first
    takes: int = 0  # questions of other skills it ranks first on

    def to_dict(self) -> dict[str, Any]:
        return {
            "skill_id": self.skill_id,
            "questions": self.questions,
            **{m: round(v, 4) for m, v in self.metrics.items()},
            "takes_from_others": self.takes,
            "confused_with": self.confused_with,
        }


@dataclass
class SelfEvalReport:
    skills: int
    questions: int
    folds: int
    seconds: float
    overall: dict[str, float]
    by_source: dict[str, dict[str, float]]
    per_skill: list[SkillScore]  # worst first
    pairs: list[dict[str, Any]]  # the confusion pairs, most questions lost first
    unreached: list[str]  # skills none of whose questions ranks them first
    takers: list[dict[str, Any]]  # skills taking the most questions of others
    ranked: dict[int, list[str]] = field(default_factory=dict, repr=False)  # question -> ids

    def to_dict(self) -> dict[str, Any]:
        return {
            "skills": self.skills,
            "questions": self.questions,
            "folds": self.folds,
            "seconds": round(self.seconds, 1),
            "overall": {m: round(v, 4) for m, v in self.overall.items()},
            "by_source": {
                s: {m: round(v, 4) for m, v in ms.items()} for s, ms in self.by_source.items()
            },
            "unreached": self.unreached,
            "takers": self.takers,
            "pairs": self.pairs,
            "per_skill": [s.to_dict() for s in self.per_skill],
        }

    def collisions(self) -> dict[frozenset[str], int]:
        """For each pair of skills, how many of either's questions ranked the other first."""
        out: Counter[frozenset[str]] = Counter()
        for p in self.pairs:
            out[frozenset((p["skill"], p["taken_by"]))] += p["count"]
        return dict(out)


def self_evaluate(
    index: SkillIndex,
    embedder: Embedder,
    *,
    config: ScoringConfig | None = None,
    folds: int = DEFAULT_FOLDS,
    skill_ids: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SelfEvalReport:
    """Rank every skill's own questions with an index that lacks them (k-fold by item).

    ``skill_ids``: only these skills' questions are asked (every skill stays in the index).
    ``progress(done, total)`` after each fold.
    """
    from retriever.index.build import subset_index
    from retriever.search.searcher import Searcher

    if folds < 2:
        raise ValueError(f"folds must be at least 2, not {folds}")
    started = time.perf_counter()
    questions = self_questions(index.skills)
    if skill_ids is not None:
        wanted = set(skill_ids)
        questions = [q for q in questions if q.skill_id in wanted]
    texts = list(dict.fromkeys(q.text for q in questions))
    known = KnownVectors(embedder, texts, embedder.encode(texts) if texts else _empty(embedder))
    vectors = index.vectors.all_vectors()
    row_of: dict[tuple[str, str], int] = {
        (d.skill_id, d.field): row for row, d in enumerate(index.documents)
    }
    ranked: dict[int, list[str]] = {}
    for f in range(folds):
        asked = [i for i, q in enumerate(questions) if fold_of(q, folds) == f]
        if asked:
            held = {
                row_of[(questions[i].skill_id, questions[i].held_by)]
                for i in asked
                if (questions[i].skill_id, questions[i].held_by) in row_of
            }
            keep = [r for r in range(len(index.documents)) if r not in held]
            searcher = Searcher(
                subset_index(index, keep, vectors), known, config or ScoringConfig()
            )
            for i in asked:
                ranked[i] = searcher.rank(questions[i].text, K)
        if progress:
            progress(f + 1, folds)
    return _report(index, questions, ranked, folds, time.perf_counter() - started)


def _empty(embedder: Embedder) -> np.ndarray:
    import numpy as np

    return np.zeros((0, embedder.dimension), dtype=np.float32)


def _report(
    index: SkillIndex,
    questions: list[SelfQuestion],
    ranked: dict[int, list[str]],
    folds: int,
    seconds: float,
) -> SelfEvalReport:
    per_question = {i: query_metrics(ranked[i], [q.skill_id]) for i, q in enumerate(questions)}
    by_skill: dict[str, list[int]] = defaultdict(list)
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, q in enumerate(questions):
        by_skill[q.skill_id].append(i)
        by_source[q.source].append(i)

    def mean(rows: list[int]) -> dict[str, float]:
        got = mean_metrics([per_question[i] for i in rows])
        return {m: got[m] for m in (*METRICS, "n")}

    lost: dict[tuple[str, str], list[int]] = defaultdict(list)  # (skill, first) -> questions
    for i, q in enumerate(questions):
        first = ranked[i][0] if ranked[i] else None
        if first is not None and first != q.skill_id:
            lost[q.skill_id, first].append(i)
    takes = Counter(first for (_, first), qs in lost.items() for _ in qs)
    scores = []
    for sid, rows in by_skill.items():
        confused = sorted(
            ((first, qs) for (s, first), qs in lost.items() if s == sid),
            key=lambda x: (-len(x[1]), x[0]),
        )
        scores.append(
            SkillScore(
                sid,
                len(rows),
                {m: v for m, v in mean(rows).items() if m != "n"},
                [
                    {"skill": first, "count": len(qs), "example": questions[qs[0]].text}
                    for first, qs in confused[:5]
                ],
                takes.get(sid, 0),
            )
        )
    scores.sort(key=lambda s: (s.metrics["MRR@10"], s.metrics["R@1"], s.skill_id))
    ordered = sorted(lost.items(), key=lambda item: (-len(item[1]), item[0]))
    pairs: list[dict[str, Any]] = [
        {
            "skill": s,
            "taken_by": first,
            "count": len(qs),
            "of": len(by_skill[s]),
            "example": questions[qs[0]].text,
        }
        for (s, first), qs in ordered
    ]
    unreached = sorted(s.skill_id for s in scores if s.metrics["R@1"] == 0)
    takers = [{"skill": sid, "takes": n} for sid, n in takes.most_common(10)]
    everyone = list(per_question)
    return SelfEvalReport(
        skills=len(index.skills),
        questions=len(questions),
        folds=folds,
        seconds=seconds,
        overall=mean(everyone),
        by_source={s: mean(rows) for s, rows in sorted(by_source.items())},
        per_skill=scores,
        pairs=pairs,
        unreached=unreached,
        takers=takers,
        ranked=ranked,
    )
