"""Adapt the embedding model to a collection: fine-tune it on pairs the collection provides.

Every skill already says, in several ways, what it is for: its triggers, the "when" of its
patterns, the "why" of its anti-patterns. Each of those texts is paired with the skill's card
(``documents.card_text``) and the model is trained to put each text nearer its own card than
the other cards of the batch (multiple-negatives ranking loss, written out here: softmax over
the batch's cards, scale 20, as sentence-transformers' ``MultipleNegativesRankingLoss``).

Two choices make the in-batch negatives useful: a batch holds each skill at most once (two
texts of one skill would be each other's false negatives), and a batch is cut from skills
ordered by their folder's category, so most negatives are neighbours of the positive (the
"hard negatives" a random batch rarely has).

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

from retriever.documents import card_text
from retriever.errors import RetrieverError
from retriever.skill import Skill

log = logging.getLogger(__name__)

TUNE_FILE = "tune.json"
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
    seconds: float


def training_texts(skill: Skill) -> list[str]:
    """The texts of ``skill`` that say when it applies: triggers, pattern "when"s (else the
    pattern's description), anti-pattern "why"s (else the description)."""
    texts = list(skill.triggers)
    texts += [p.when or p.description for p in skill.patterns]
    texts += [a.why or a.description for a in skill.anti_patterns]
    return list(dict.fromkeys(t.strip() for t in texts if t and t.strip()))


def category(skill: Skill) -> str:
    """The folder that holds the skill's folder (the category in the spawner layout)."""
    return Path(skill.path).parent.parent.name if skill.path else ""


def make_batches(
    texts: dict[str, list[str]],
    groups: dict[str, str],
    batch_size: int,
    epochs: float,
    rng: random.Random,
) -> list[list[tuple[str, str]]]:
    """Batches of ``(skill id, text)``, each skill at most once per batch.

    One epoch uses every text once. Skills are ordered by group (random within it, a random
    rotation each round) and cut into consecutive batches, so a batch's skills are mostly
    neighbours. ``epochs`` may be fractional (the last epoch is cut short).
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
    return out


def tune(
    skills: Sequence[Skill],
    out: Path,
    *,
    model: str | None = None,
    epochs: float = 1.0,
    batch_size: int = 64,
    learning_rate: float = 2e-5,
    max_seq_length: int = 128,
    max_steps: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> TuneReport:
    """Fine-tune ``model`` (default: the packaged MiniLM) on ``skills`` and save it to ``out``.

    ``out`` must not exist or be empty; the model is written beside it and renamed into place,
    so an interrupted run leaves nothing half-written. ``progress(step, steps, loss)`` is
    called after every step.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RetrieverError(
            f"{out}: already exists and is not an empty folder; choose another --out"
        )
    if batch_size < MIN_BATCH:
        raise RetrieverError(f"batch size must be at least {MIN_BATCH}, not {batch_size}")
    if not epochs > 0:
        raise RetrieverError(f"epochs must be above 0, not {epochs}")
    if max_steps is not None and max_steps < 1:
        raise RetrieverError(f"max steps must be at least 1, not {max_steps}")
    texts = {s.id: training_texts(s) for s in skills}
    cards = {s.id: card_text(s) for s in skills}
    pairs = sum(len(v) for v in texts.values())
    if sum(1 for v in texts.values() if v) < MIN_BATCH:
        raise RetrieverError(
            "too few skills with triggers, patterns or anti-patterns to "
            f"tune on ({pairs} training texts)"
        )
    # the batches before the model: a run that cannot train fails in a moment, not after
    # seconds of loading torch
    batches = make_batches(
        texts, {s.id: category(s) for s in skills}, batch_size, epochs, random.Random(seed)
    )[:max_steps]
    if not batches:
        raise RetrieverError(
            f"no training batch in {epochs} epochs of {pairs} texts: raise --epochs"
        )

    import torch

    from retriever.embed import SentenceTransformerEmbedder

    torch.manual_seed(seed)
    base = SentenceTransformerEmbedder(model)
    st = base._get()  # noqa: SLF001 - training needs the torch model itself
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

    started = time.perf_counter()
    st.train()
    for step, batch in enumerate(batches):
        anchors = embed([text for _, text in batch])
        positives = embed([cards[sid] for sid, _ in batch])
        logits = anchors @ positives.T * SCALE
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if progress:
            progress(step + 1, len(batches), loss.item())
    st.eval()
    st.max_seq_length = reading
    seconds = time.perf_counter() - started

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
