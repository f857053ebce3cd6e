"""Adapt the embedding model to a collection: fine-tune it on pairs the collection provides.

A collection already holds questions whose answer is known: every skill's validation
messages, the symptoms and situations of its sharp edges, and the contexts in which other
skills hand work to it are written in the words users describe problems with. Each of those
texts is paired with its skill's card (``documents.card_text``), and the model is trained to
put each text nearer its own card than to the other cards of the batch and to the cards of
the skills the current index confuses it with (multiple-negatives ranking loss, written out
here: softmax over the candidate cards, scale 20, as sentence-transformers'
``MultipleNegativesRankingLoss``). The triggers, pattern "when"s and anti-pattern "why"s of
the first version can be added (``texts="all"``).

Three choices make the negatives useful: a batch holds each skill at most once (two texts of
one skill would be each other's false negatives); a batch is cut from skills ordered by
their folder's category, so most in-batch negatives are neighbours; and each text brings the
cards of its hard negatives, the skills the current index ranks above or near its own
(``hard_negatives``: a function from a text to ranked skill ids, e.g. a ``SkillRetriever``'s
search).

The result is an ordinary sentence-transformers model folder: ``retrieve index --model DIR``
uses it (and exports it to ONNX like any other model). Training runs on the CPU.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from retriever.authoring.questions import own_questions
from retriever.errors import RetrieverError
from retriever.index.documents import card_text, incoming_rules
from retriever.skill import Skill

log = logging.getLogger(__name__)

TUNE_FILE = "tune.json"
# Bounds on the numbers a user passes: beyond them a run is a mistake, not a choice (an
# --epochs of 1e308 would build batches until memory ran out; a learning rate of 1 sends
# the weights to NaN within a few steps).
MAX_EPOCHS = 100
MAX_BATCH_SIZE = 4096
MAX_LEARNING_RATE = 0.1
MAX_NEGATIVES = 50
SCALE = 20.0  # cosine -> logit, sentence-transformers' default for this loss
MIN_BATCH = 2  # a batch of one skill has no negative


@dataclass(frozen=True)
class TuneReport:
    out: str
    base_model: str
    skills: int
    pairs: int
    steps: int
    epochs: float
    batch_size: int
    learning_rate: float
    seconds: float  # training, hard-negative mining included
    texts: str = "problems"
    hard_negatives: int = 0  # wrong skills' cards per text (0: in-batch negatives only)
    mining_seconds: float = 0.0


TEXT_SETS = ("problems", "all", "skill")


def problem_texts(skill: Skill, incoming: Sequence[str] = ()) -> list[str]:
    """The texts of ``skill`` written as a user describes a problem: its own questions
    (``authoring.questions``: validation messages, sharp edges' symptoms and situations,
    ``receives_from`` contexts), and ``incoming``: the contexts of other skills' rules that
    hand work to it."""
    texts = [q.text for q in own_questions(skill)] + list(incoming)
    return list(dict.fromkeys(t.strip() for t in texts if t and t.strip()))


def training_texts(skill: Skill) -> list[str]:
    """The texts of ``skill`` that say when it applies: triggers, pattern "when"s (else the
    pattern's description), anti-pattern "why"s (else the description)."""
    texts = list(skill.triggers)
    texts += [p.when or p.description for p in skill.patterns]
    texts += [a.why or a.description for a in skill.anti_patterns]
    return list(dict.fromkeys(t.strip() for t in texts if t and t.strip()))


def texts_of(skills: Sequence[Skill], which: str = "problems") -> dict[str, list[str]]:
    """Training texts per skill id: ``"problems"`` (``problem_texts``), ``"skill"`` (the
    first version's ``training_texts``) or ``"all"`` (both)."""
    if which not in TEXT_SETS:
        raise RetrieverError(f"unknown training texts '{which}': choose {', '.join(TEXT_SETS)}")
    incoming = {
        sid: [rule.context or rule.trigger for _, rule in rules]
        for sid, rules in incoming_rules(skills).items()
    }
    out = {}
    for s in skills:
        problems = problem_texts(s, incoming.get(s.id, ())) if which != "skill" else []
        own = training_texts(s) if which != "problems" else []
        out[s.id] = list(dict.fromkeys(problems + own))
    return out


def hard_negatives_of(
    texts: dict[str, list[str]],
    rank: Callable[[str], list[str]],
    per_text: int,
    progress: Callable[[int], None] | None = None,
) -> dict[tuple[str, str], list[str]]:
    """For each ``(skill id, text)``, the first ``per_text`` other skills ``rank`` (a text
    -> ranked skill ids, e.g. a retriever's search) puts for the text: the skills the
    current index confuses it with."""
    out: dict[tuple[str, str], list[str]] = {}
    n = 0
    for sid, ts in texts.items():
        for t in ts:
            out[sid, t] = [x for x in rank(t) if x != sid][:per_text]
            n += 1
            if progress:
                progress(n)
    return out


def category(skill: Skill) -> str:
    """The folder that holds the skill's folder (the category in the spawner layout)."""
    return Path(skill.path).parent.parent.name if skill.path else ""


def make_batches(
    texts: dict[str, list[str]],
    groups: dict[str, str],
    batch_size: int,
    epochs: float,
    rng: random.Random,
    max_batches: int | None = None,
) -> list[list[tuple[str, str]]]:
    """Batches of ``(skill id, text)``, each skill at most once per batch.

    One epoch uses every text once. Skills are ordered by group (random within it, a random
    rotation each round) and cut into consecutive batches, so a batch's skills are mostly
    neighbours. ``epochs`` may be fractional (the last epoch is cut short). No more than
    ``max_batches`` are made: the epochs after they are reached are never built.
    """
    out: list[list[tuple[str, str]]] = []
    whole, part = int(epochs), epochs - int(epochs)
    for epoch in range(whole + (1 if part > 0 else 0)):
        left = {sid: rng.sample(ts, len(ts)) for sid, ts in texts.items() if ts}
        batches: list[list[tuple[str, str]]] = []
        while True:
            order = sorted(
                (sid for sid in left if left[sid]),
                key=lambda sid: (groups.get(sid, ""), rng.random()),
            )
            if len(order) < MIN_BATCH:
                break
            turn = rng.randrange(len(order))
            order = order[turn:] + order[:turn]
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                if len(chunk) >= MIN_BATCH:
                    batches.append([(sid, left[sid].pop()) for sid in chunk])
        rng.shuffle(batches)
        if epoch == whole:  # the fractional last epoch
            batches = batches[: int(len(batches) * part)]
        out += batches
        if max_batches is not None and len(out) >= max_batches:
            return out[:max_batches]
    return out


def check_numbers(
    *,
    epochs: float,
    batch_size: int,
    learning_rate: float,
    max_steps: int | None,
    negatives_per_text: int,
) -> None:
    """``RetrieverError`` naming the first number that cannot make a sane run."""
    import math

    if not isinstance(batch_size, int) or not MIN_BATCH <= batch_size <= MAX_BATCH_SIZE:
        raise RetrieverError(
            f"batch size must be a whole number from {MIN_BATCH} to {MAX_BATCH_SIZE}, "
            f"not {batch_size}"
        )
    if not math.isfinite(epochs) or not 0 < epochs <= MAX_EPOCHS:
        raise RetrieverError(f"epochs must be above 0 and at most {MAX_EPOCHS}, not {epochs}")
    if not math.isfinite(learning_rate) or not 0 < learning_rate <= MAX_LEARNING_RATE:
        raise RetrieverError(
            f"learning rate must be above 0 and at most {MAX_LEARNING_RATE}, not {learning_rate}"
        )
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
        raise RetrieverError(f"max steps must be a whole number of at least 1, not {max_steps}")
    if not isinstance(negatives_per_text, int) or not 0 <= negatives_per_text <= MAX_NEGATIVES:
        raise RetrieverError(
            f"hard negatives per text must be from 0 to {MAX_NEGATIVES}, not {negatives_per_text}"
        )


def tune(
    skills: Sequence[Skill],
    out: Path,
    *,
    model: str | None = None,
    texts: str = "problems",
    hard_negatives: Callable[[str], list[str]] | None = None,
    negatives_per_text: int = 2,
    epochs: float = 1.0,
    batch_size: int = 64,
    learning_rate: float = 2e-5,
    max_seq_length: int = 128,
    max_steps: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> TuneReport:
    """Fine-tune ``model`` (default: the packaged MiniLM) on ``skills`` and save it to ``out``.

    ``texts``: which texts are paired with their skill's card (``texts_of``).
    ``hard_negatives``: a text -> ranked skill ids (the current index's ranking); the first
    ``negatives_per_text`` wrong skills' cards join each text's softmax. ``out`` must not
    exist or be empty; the model is written beside it and renamed into place, so an
    interrupted run leaves nothing half-written. ``progress(step, steps, loss)`` is called
    after every step.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RetrieverError(
            f"{out}: already exists and is not an empty folder; choose another --out"
        )
    check_numbers(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        max_steps=max_steps,
        negatives_per_text=negatives_per_text,
    )
    by_skill = texts_of(skills, texts)
    cards = {s.id: card_text(s) for s in skills}
    pairs = sum(len(v) for v in by_skill.values())
    if sum(1 for v in by_skill.values() if v) < MIN_BATCH:
        raise RetrieverError(
            f"too few skills with {texts} training texts to tune on ({pairs} texts): try "
            "--texts all"
        )
    # the batches before the model: a run that cannot train fails in a moment, not after
    # seconds of loading torch
    batches = make_batches(
        by_skill,
        {s.id: category(s) for s in skills},
        batch_size,
        epochs,
        random.Random(seed),
        max_batches=max_steps,
    )
    if not batches:
        raise RetrieverError(
            f"no training batch in {epochs} epochs of {pairs} texts: raise --epochs"
        )
    started = time.perf_counter()
    negatives: dict[tuple[str, str], list[str]] = {}
    if hard_negatives is not None and negatives_per_text:
        used = {(sid, t) for b in batches for sid, t in b}
        wanted = {sid: [t for t in ts if (sid, t) in used] for sid, ts in by_skill.items()}
        negatives = hard_negatives_of(wanted, hard_negatives, negatives_per_text)
    mining_seconds = time.perf_counter() - started

    import torch

    from retriever.index.embed import SentenceTransformerEmbedder

    torch.manual_seed(seed)
    base = SentenceTransformerEmbedder(model)
    st = base.model
    reading = st.max_seq_length
    st.max_seq_length = max_seq_length  # training texts are short; cards are cut, not lost
    steps, warmup = len(batches), max(1, len(batches) // 10)
    optimizer = torch.optim.AdamW(st.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up, then linear decay
        optimizer,
        lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / max(1, steps - warmup))),
    )

    def embed(batch_texts: list[str]):
        features = st.tokenize(batch_texts)
        return torch.nn.functional.normalize(st(features)["sentence_embedding"], dim=1)

    st.train()
    for step, batch in enumerate(batches):
        ids = [sid for sid, _ in batch]
        # the batch's cards, then its texts' hard negatives not already among them
        extra = list(
            dict.fromkeys(
                n for sid, t in batch for n in negatives.get((sid, t), ()) if n not in ids
            )
        )
        anchors = embed([text for _, text in batch])
        candidates = embed([cards[sid] for sid in ids + extra if sid in cards])
        logits = anchors @ candidates.T * SCALE
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)))
        if not torch.isfinite(loss):  # the weights went to inf/NaN: nothing worth saving
            raise RetrieverError(
                f"training diverged at step {step + 1} of {len(batches)} (the loss is "
                f"{loss.item()}): lower --learning-rate (now {learning_rate})"
            )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if progress:
            progress(step + 1, len(batches), loss.item())
    st.eval()
    st.max_seq_length = reading
    seconds = time.perf_counter() - started
    _check_finite(st, [cards[sid] for sid in list(cards)[:32]], learning_rate)

    report = TuneReport(
        str(out.resolve()),
        base.model_id,
        len(skills),
        pairs,
        len(batches),
        epochs,
        batch_size,
        learning_rate,
        round(seconds, 1),
        texts,
        len(negatives) and negatives_per_text,
        round(mining_seconds, 1),
    )
    tmp = out.parent / f".tmp-{out.name}-{uuid.uuid4().hex[:6]}"
    try:
        st.save(str(tmp))
        (tmp / TUNE_FILE).write_text(json.dumps(asdict(report), indent=1))
        if out.exists():
            out.rmdir()  # empty, checked above
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _check_finite(st, probes: list[str], learning_rate: float) -> None:
    """Refuse a trained model whose vectors are not finite (its weights went to NaN or
    inf): an index built with it would rank nothing and print NaN scores."""
    import numpy as np

    vectors = st.encode(probes or ["probe"], convert_to_numpy=True, show_progress_bar=False)
    if not np.isfinite(vectors).all():
        raise RetrieverError(
            "the trained model gives vectors that are not finite numbers; nothing was "
            f"saved: lower --learning-rate (now {learning_rate})"
        )
