"""The fast embedding path: a sentence-transformers model exported once to ONNX, run with
onnxruntime and the ``tokenizers`` library.

Importing sentence-transformers (and torch) costs seconds; onnxruntime + tokenizers start in a
fraction of one and give the same vectors (the export is checked against the original model
before it is used). The export happens once per model and machine, with torch, and is kept
in ``<index home>/models/``. Models the exporter does not understand (pooling other than
mean/cls/max, extra layers such as Dense) stay on the sentence-transformers path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retriever.errors import ModelError
from retriever.index.embed import Embedder, Runtime

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

# 2: exported with eager attention, then fused by onnxruntime's transformer optimizer.
EXPORT_VERSION = 2
ONNX_FILE = "model.onnx"
META_FILE = "export.json"
# The export is used only if it reproduces the original model's vectors this closely.
MIN_COSINE = 0.9999
_PROBES = [
    "my webhook handler processes the same event twice",
    "Cache invalidation",
    "A longer text about database indexes, slow queries and the N+1 problem in an ORM, "
    "written to span more tokens than the short ones.",
    "é ü 日本語 emoji 🚀",
]
_SUPPORTED_MODULES = {"Transformer", "Pooling", "Normalize"}
# Encoder families onnxruntime's transformer optimizer fuses as "bert" (attention, layer norms,
# GELU into single kernels). Others are exported unfused, which is slower but just as exact.
_FUSABLE = {"bert", "roberta", "xlm-roberta", "camembert", "distilbert", "mpnet", "electra"}
# Padded tokens per batch when embedding many texts. Batches of similar-length texts, capped
# by padded size rather than count: a batch of 64 long texts spills the CPU caches. Measured on
# the 462-skill corpus (10,494 texts): 64 texts a batch 80 s; 1,024 padded tokens 53 s
# unfused, 42 s fused.
BATCH_TOKENS = 1024
MAX_BATCH = 64
TOKENIZE_CHUNK = 8192  # texts tokenised (and length-sorted) together


class ExportUnsupported(ModelError):
    """The model cannot be exported to ONNX by this module (the slow path still works)."""


def _model_key(model_id: str, load_from: str) -> str:
    """A folder name for the export: changes when the model's files change."""
    h = hashlib.sha256(f"{EXPORT_VERSION}\n{model_id}\n{load_from}".encode())
    folder = Path(load_from)
    if folder.is_dir():
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                st = f.stat()
                h.update(f"{f.relative_to(folder)}:{st.st_size}:{int(st.st_mtime)}\n".encode())
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id.split("/")[-1])
    return f"{safe[:40]}-{h.hexdigest()[:12]}"


def export_dir(models_home: Path, model_id: str, load_from: str) -> Path:
    return models_home / _model_key(model_id, load_from)


def _pooling_mode(pooling: Any) -> str:
    cfg = pooling.get_config_dict() if hasattr(pooling, "get_config_dict") else {}
    mode = cfg.get("pooling_mode")
    if isinstance(mode, str):
        return mode
    for name in ("mean", "cls", "max"):  # older sentence-transformers: one flag per mode
        if cfg.get(f"pooling_mode_{name}_tokens") or cfg.get(f"pooling_mode_{name}_token"):
            return name
    return "unknown"


def export_model(st_model: Any, target: Path) -> Path:
    """Export a loaded ``SentenceTransformer`` to ``target`` (written aside, then renamed)."""
    import torch

    kinds = [type(m).__name__ for m in st_model]
    if set(kinds) - _SUPPORTED_MODULES or not kinds or kinds[0] != "Transformer":
        raise ExportUnsupported(f"modules {kinds} (only Transformer, Pooling, Normalize)")
    pooling = next((m for m in st_model if type(m).__name__ == "Pooling"), None)
    mode = _pooling_mode(pooling) if pooling is not None else "unknown"
    if mode not in ("mean", "cls", "max"):
        raise ExportUnsupported(f"pooling mode '{mode}'")
    transformer = st_model[0]
    tokenizer = transformer.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise ExportUnsupported("the model has no fast (tokenizers) tokenizer")
    input_names = [
        n
        for n in ("input_ids", "attention_mask", "token_type_ids")
        if n in tokenizer.model_input_names
    ]
    auto_model = transformer.auto_model.eval()
    # Eager attention traces into plain MatMul/Softmax nodes that the optimizer recognises and
    # fuses; the default (SDPA) traces into a form it does not. Same numbers either way.
    attention = getattr(auto_model.config, "_attn_implementation", None)
    switched = bool(
        attention and attention != "eager" and hasattr(auto_model, "set_attn_implementation")
    )
    if switched:
        auto_model.set_attn_implementation("eager")

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = auto_model

        def forward(self, *args):
            return self.model(**dict(zip(input_names, args, strict=True))).last_hidden_state

    sample = tokenizer(
        ["a short text", "another, longer text to export with"], padding=True, return_tensors="pt"
    )
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:6]}"
    tmp.mkdir(parents=True)
    try:
        axes = {n: {0: "batch", 1: "tokens"} for n in input_names}
        # The tracer warns about shapes it fixes while tracing; the export is checked against
        # the original model before use (check_export), so the warnings are only noise.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(
                    Wrapped(),
                    tuple(sample[n] for n in input_names),
                    str(tmp / ONNX_FILE),
                    input_names=input_names,
                    output_names=["last_hidden_state"],
                    dynamic_axes={**axes, "last_hidden_state": {0: "batch", 1: "tokens"}},
                    opset_version=17,
                    dynamo=False,
                )
            finally:
                if switched:
                    auto_model.set_attn_implementation(attention)
        fuse_attention(tmp / ONNX_FILE, auto_model.config, input_names)
        tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        meta = {
            "export_version": EXPORT_VERSION,
            "inputs": input_names,
            "pooling": mode,
            "max_seq_length": int(st_model.max_seq_length or 512),
            "do_lower_case": bool(getattr(transformer, "do_lower_case", False)),
            "dimension": int(auto_model.config.hidden_size),
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / META_FILE).is_file():
                raise
            shutil.rmtree(tmp)  # a concurrent export won; keep it
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def fuse_attention(path: Path, config: Any, input_names: list[str]) -> bool:
    """Replace ``path`` by its fused form if the optimizer knows the model and the fused model
    gives the same hidden states; otherwise leave it as exported. Returns whether it fused."""
    model_type = getattr(config, "model_type", "")
    if model_type not in _FUSABLE:
        return False
    fused = path.with_name("fused.onnx")
    try:
        from onnxruntime.transformers import optimizer

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = optimizer.optimize_model(
                str(path),
                model_type="bert",
                opt_level=0,
                num_heads=int(config.num_attention_heads),
                hidden_size=int(config.hidden_size),
            )
        if not model.get_fused_operator_statistics().get("Attention"):
            return False
        model.save_model_to_file(str(fused))
        if _max_difference(path, fused, input_names) > 1e-3:
            log.info("fused ONNX model differs from the export; keeping the unfused one")
            return False
        os.replace(fused, path)
        return True
    except Exception as e:  # noqa: BLE001 - fusing is an optimisation; the export stands
        log.info("could not fuse the ONNX export (%s); keeping it unfused", e)
        return False
    finally:
        fused.unlink(missing_ok=True)


def _max_difference(a: Path, b: Path, input_names: list[str]) -> float:
    """Largest absolute difference between two models' hidden states on a padded batch."""
    import numpy as np
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 5000, size=(3, 24), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[1, 10:] = 0  # padding must be masked the same way in both
    mask[2, 3:] = 0
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    feeds = {k: v for k, v in feeds.items() if k in input_names}
    outs = [
        ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
        for p in (a, b)
    ]
    m = mask[..., None].astype(bool)
    return float(np.abs(np.where(m, outs[0] - outs[1], 0)).max())


class OnnxEmbedder(Embedder):
    """An ``Embedder`` running an exported model with onnxruntime (no torch)."""

    def __init__(self, folder: Path, model_id: str) -> None:
        self.folder = folder
        self.model_id = model_id
        try:
            self.meta = json.loads((folder / META_FILE).read_text())
        except (OSError, ValueError) as e:
            raise ModelError(f"{folder}: unreadable ONNX export ({e})") from e
        self._session: Any = None
        self._tokenizer: Any = None
        self._counter: Any = None
        self._pad_id = 0
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return int(self.meta["dimension"])

    def runtime(self) -> Runtime:
        return Runtime("onnx", str(self.folder))

    def import_modules(self) -> None:
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401

    def warm(self) -> None:
        """Load the tokenizer and session now (e.g. in a thread while the index loads)."""
        with self._lock:
            self._load()

    def _load(self):
        if self._session is None:
            import onnxruntime as ort
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
            tokenizer.enable_truncation(int(self.meta["max_seq_length"]))
            # Batches are padded by _run, to their own longest text.
            self._pad_id = int((tokenizer.padding or {}).get("pad_id", 0))
            tokenizer.no_padding()
            options = ort.SessionOptions()
            options.intra_op_num_threads = min(4, os.cpu_count() or 1)
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            # Worker threads spin between the operators of one run (waking a sleeping
            # thread for each of a hundred small operators costs ~0.5 ms a query here), but
            # stop when the run ends: spinning on would take the CPU from the rest of the
            # query and from the caller (measured: no CPU used in the second after a run).
            options.add_session_config_entry("session.intra_op.allow_spinning", "1")
            options.add_session_config_entry("session.force_spinning_stop", "1")
            self._session = ort.InferenceSession(
                str(self.folder / ONNX_FILE), options, providers=["CPUExecutionProvider"]
            )
            self._tokenizer = tokenizer
        return self._session, self._tokenizer

    def count_tokens(self, text: str) -> int:
        """How many tokens the model's tokenizer makes of ``text`` (no limit applied)."""
        with self._lock:
            if self._counter is None:  # no truncation, no padding: the true count
                from tokenizers import Tokenizer

                self._counter = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
                self._counter.no_truncation()
                self._counter.no_padding()
            return len(self._counter.encode(text, add_special_tokens=False).ids)

    def truncates(self, text: str) -> bool:
        """Whether ``text`` is longer than the model reads (it is then cut)."""
        with self._lock:
            _, tokenizer = self._load()
            return bool(tokenizer.encode(text).overflowing)

    def encode_query(self, text: str) -> tuple[np.ndarray, bool]:
        """``encode([text])`` and ``truncates(text)`` from one tokenisation (the query path
        wants both)."""
        if self.meta.get("do_lower_case"):
            text = text.lower()
        with self._lock:
            session, tokenizer = self._load()
            encoding = tokenizer.encode(text)
            return self._run(session, [encoding]), bool(encoding.overflowing)

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        import numpy as np

        texts = [t.lower() for t in texts] if self.meta.get("do_lower_case") else list(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        bar = None
        if progress:
            try:
                from tqdm import tqdm

                bar = tqdm(total=len(texts), desc="embedding", unit="text")
            except ImportError:  # pragma: no cover
                bar = None
        with self._lock:  # one session run at a time; the session uses all cores itself
            session, tokenizer = self._load()
            # Tokenised a chunk at a time: the encodings of a million texts would not fit.
            for first in range(0, len(texts), TOKENIZE_CHUNK):
                encoded = tokenizer.encode_batch(texts[first : first + TOKENIZE_CHUNK])
                for idx in token_batches([len(e.ids) for e in encoded]):
                    rows = [first + i for i in idx]
                    out[rows] = self._run(session, [encoded[i] for i in idx])
                    if bar:
                        bar.update(len(idx))
        if bar:
            bar.close()
        return out

    def _run(self, session, encoded: list) -> np.ndarray:
        import numpy as np

        width = max(len(e.ids) for e in encoded)
        ids = np.full((len(encoded), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encoded), width), dtype=np.int64)
        types = np.zeros((len(encoded), width), dtype=np.int64)
        for row, e in enumerate(encoded):
            n = len(e.ids)
            ids[row, :n] = e.ids
            mask[row, :n] = 1
            types[row, :n] = e.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = session.run(None, {k: v for k, v in feeds.items() if k in self.meta["inputs"]})[0]
        pooling = self.meta["pooling"]
        if pooling == "cls":
            vectors = hidden[:, 0]
        elif pooling == "max":
            masked = np.where(mask[..., None] > 0, hidden, -1e9)
            vectors = masked.max(axis=1)
        else:
            m = mask[..., None].astype(np.float32)
            vectors = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        # Always unit length, as the sentence-transformers path asks for: the index compares
        # by inner product.
        norms = np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        return (vectors / norms).astype(np.float32)


def token_batches(
    lengths: list[int], budget: int = BATCH_TOKENS, most: int = MAX_BATCH
) -> list[list[int]]:
    """Indices grouped into batches of similar token length, each at most ``most`` texts and,
    once padded to its longest text, at most ``budget`` tokens (a longer text goes alone)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:  # ascending, so the newest text is the batch's longest
        if current and (len(current) >= most or (len(current) + 1) * lengths[i] > budget):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def check_export(onnx: OnnxEmbedder, reference: Any) -> float:
    """The lowest cosine between the export's vectors and the original model's on probes."""
    import numpy as np

    a = onnx.encode(_PROBES)
    b = reference.encode(_PROBES)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).min())
