"""The fast embedding path: a sentence-transformers model exported once to ONNX, run with
onnxruntime and the ``tokenizers`` library.

Importing sentence-transformers (and torch) costs seconds; onnxruntime + tokenizers start in a
fraction of one and give the same vectors (the export is checked against the original model
before it is used). The export happens once per model and machine, with torch, and is kept
in ``<index home>/models/``. Models the exporter does not understand (pooling other than
mean/cls/max, extra layers such as Dense) stay on the sentence-transformers path.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retriever.errors import ModelError
from retriever.index.embed import Embedder, Runtime

if TYPE_CHECKING:
    import numpy as np

    from retriever.index.progress import BuildProgress

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
# Padded tokens per batch when texts are batched (``token_batches``): batches of similar-length
# texts, capped by padded size rather than count: a batch of 64 long texts spills the CPU
# caches. Measured on the 462-skill corpus (10,494 texts): 64 texts a batch 80 s; 1,024
# padded tokens 53 s unfused, 42 s fused.
BATCH_TOKENS = 1024
MAX_BATCH = 64
# Texts a session run embeds when encoding many. One: each text alone, as a query is. With
# single-threaded runs side by side (BUILD_WORKERS) that was faster than batches of 1,024
# padded tokens (no padding, small tensors stay in cache; on 1,500 spawner texts 0.37x today's
# time against 0.45x batched, int8; 0.68x against 0.76x, fp32), and the int8 variant needs
# it: its activations are quantised with one scale per run, so a text's vector would depend
# on the other texts of its batch (cosine 0.99 to itself embedded alone). Alone, a text's
# vector is the same in every build and in a query.
EMBED_BATCH = 1
TOKENIZE_CHUNK = 8192  # texts tokenised together (only their lengths are kept at first)
# A build runs this many single-threaded session runs side by side instead of one run on
# every core: a run split over cores waits at each operator for the slowest core, which on a
# busy machine is one the scheduler gave to another process (measured on the 2-core machine,
# load 4-8: 0.73-0.76x the time of one run on 2 threads).
BUILD_WORKERS = 4
# Fewer runs than this many per worker go to the query session (an edit's rebuild).
PARALLEL_LEAST = 4
# The first-line estimate times at least this many runs per worker
# (``progress.spread_sample``).
SAMPLE_LEAST = 3
# The stable id of the vectors an export gives (``export.json``'s ``variant``), for caches
# keyed on model + variant + text: the unquantised export gives the model's own vectors.
FP32 = "fp32"
# The int8 variant: the fused export quantised by onnxruntime's ``quantize_dynamic``
# (weights int8, per output channel; activations quantised at run time), kept beside it in
# ``<export>-int8/``, except the feed-forward output projections, which stay fp32 (KEEP_FP32).
# Its variant id is "int8-dq-s8pc-ffo-" and the first 12 hex digits of the quantised file's
# sha256: the same file gives the same vectors, another quantiser another id.
# Measured (benchmarks/README.md, "Build speed"), against the fp32 export on both dev sets
# (MRR@10, paired-bootstrap 95% interval of the difference):
#   every layer int8:         SKILL.md -0.0008 [-0.0086, +0.0072], spawner -0.0060
#                             [-0.0111, -0.0014]: a loss on spawner; 0.40x the time
#   FFN output kept fp32:     SKILL.md -0.0029 [-0.0106, +0.0047], spawner -0.0017
#                             [-0.0063, +0.0028]: no loss told; 0.54x the time
# Keeping the FFN outputs halved the distance to the fp32 vectors (cosine 0.9934 -> 0.9966
# mean on 800 real texts), the most of any one group of layers; per-tensor weights were
# worse than per-channel (cosine 0.946 mean).
KEEP_FP32 = ("/output/dense",)  # node names holding these (attention's excepted) stay fp32
INT8_SUFFIX = "-int8-ffo"  # the recipe in the name: another recipe, another folder
# A quantised export is used only if its vectors are this close to the fp32 export's on the
# probes (the measured lowest on real texts is 0.97).
MIN_COSINE_INT8 = 0.95


@contextlib.contextmanager
def written_aside(target: Path) -> Iterator[Path]:
    """A fresh folder beside ``target`` to write an export into, renamed to ``target`` when
    the block ends well (if a concurrent writer got there first, its folder is kept and this
    one dropped) and removed when it fails: a half-written export is never at ``target``."""
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:6]}"
    tmp.mkdir(parents=True)
    try:
        yield tmp
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / META_FILE).is_file():
                raise
            shutil.rmtree(tmp)  # a concurrent writer won; keep its folder
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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


class _QuietQuantiser(logging.Filter):
    """Drops what the quantiser logs straight on the root logger: advice to pre-process (on
    the fused model that would undo fusions) and a note per tensor."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != "root"


def quantized_dir(export: Path) -> Path:
    """Where the int8 variant of the export in ``export`` is kept."""
    return export.with_name(export.name + INT8_SUFFIX)


def quantize_export(source: Path, target: Path) -> Path:
    """Write the int8 variant of the fp32 export in ``source`` to ``target`` (aside, then
    renamed); onnxruntime and onnx only, no torch."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with written_aside(target) as tmp:
        quiet = _QuietQuantiser()
        logging.getLogger().addFilter(quiet)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kept = kept_fp32(onnx.load(str(source / ONNX_FILE), load_external_data=False))
                quantize_dynamic(
                    str(source / ONNX_FILE),
                    str(tmp / ONNX_FILE),
                    weight_type=QuantType.QInt8,
                    per_channel=True,
                    nodes_to_exclude=kept,
                    # the fused operators (Attention, SkipLayerNormalization) are outside
                    # ONNX's shape inference: their outputs are float
                    extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
                )
        finally:
            logging.getLogger().removeFilter(quiet)
        shutil.copy(source / "tokenizer.json", tmp / "tokenizer.json")
        digest = hashlib.sha256((tmp / ONNX_FILE).read_bytes()).hexdigest()[:12]
        meta = json.loads((source / META_FILE).read_text())
        meta.update(
            {
                "variant": f"int8-dq-s8pc-ffo-{digest}",
                "quantized_from": source.name,
                "kept_fp32": kept,
            }
        )
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
    return target


def kept_fp32(model: Any) -> list[str]:
    """The nodes of ``model`` (an ONNX graph) the int8 variant leaves fp32: the feed-forward
    output projections of a BERT-like export (none in a model named otherwise: then every
    MatMul is quantised)."""
    return [
        n.name
        for n in model.graph.node
        if n.op_type == "MatMul"
        and any(part in n.name for part in KEEP_FP32)
        and "attention" not in n.name
    ]


def check_variant(variant: OnnxEmbedder, reference: OnnxEmbedder) -> float:
    """The lowest cosine between a quantised export's vectors and the fp32 export's."""
    return float((variant.encode(_PROBES) * reference.encode(_PROBES)).sum(axis=1).min())


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
    with written_aside(target) as tmp:
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
        # which vectors this export gives: "fp32" (the model's own, as sentence-transformers
        # gives them) or the id of a quantised variant
        self.variant = str(self.meta.get("variant", FP32))
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

    def _new_session(self, threads: int) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Worker threads spin between the operators of one run (waking a sleeping
        # thread for each of a hundred small operators costs ~0.5 ms a query here), but
        # stop when the run ends: spinning on would take the CPU from the rest of the
        # query and from the caller (measured: no CPU used in the second after a run).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        return ort.InferenceSession(
            str(self.folder / ONNX_FILE), options, providers=["CPUExecutionProvider"]
        )

    def _load(self):
        if self._session is None:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
            tokenizer.enable_truncation(int(self.meta["max_seq_length"]))
            # Batches are padded by _run, to their own longest text.
            self._pad_id = int((tokenizer.padding or {}).get("pad_id", 0))
            tokenizer.no_padding()
            self._session = self._new_session(min(4, os.cpu_count() or 1))
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
        from retriever.index.progress import BuildProgress

        return self._encode(texts, BuildProgress(show=progress), timed=False)

    def encode_tracked(self, texts: list[str], progress: BuildProgress) -> np.ndarray:
        """``encode(texts)`` telling ``progress`` how far it is; first a sample of the runs
        (every length, ``sample_batches``) and ``progress.estimated`` gets the seconds the
        whole call should take: the sample's time scaled to every run, on this machine as
        busy as it is now, with these texts' own lengths."""
        return self._encode(texts, progress, timed=True)

    def _encode(self, texts: list[str], progress: BuildProgress, *, timed: bool) -> np.ndarray:
        import numpy as np

        texts = [t.lower() for t in texts] if self.meta.get("do_lower_case") else list(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        progress.begin(len(texts))
        if not texts:
            progress.estimated(0.0)
            progress.embedded()
            return out
        with self._lock:  # one encode at a time; it uses all cores itself
            session, tokenizer = self._load()
            # Only the lengths are kept at first (the encodings of a million texts would not
            # fit); each group of runs is tokenised again when it runs.
            lengths: list[int] = []
            for first in range(0, len(texts), TOKENIZE_CHUNK):
                chunk = texts[first : first + TOKENIZE_CHUNK]
                lengths += [len(e.ids) for e in tokenizer.encode_batch(chunk)]
            batches = token_batches(lengths, most=EMBED_BATCH)
            workers = build_workers(len(batches))
            # A build's runs go single-threaded, several at once, on a session of their own
            # (dropped when the build is done: a server keeps only the query session).
            runner = self._new_session(1) if workers > 1 else session
            pool = ThreadPoolExecutor(workers) if workers > 1 else None
            try:
                order = list(range(len(batches)))
                if timed:
                    order = self._timed_sample(runner, pool, batches, workers, texts, out, progress)
                self._run_batches(runner, pool, [batches[i] for i in order], texts, out, progress)
            finally:
                if pool is not None:
                    pool.shutdown()
        progress.embedded()
        return out

    def _timed_sample(self, runner, pool, batches, workers, texts, out, progress) -> list[int]:
        """Run the sample of ``batches`` that the estimate is made of; the rest's indices.

        The first run of each worker is not timed: a fresh session's first runs allocate
        its memory and were several times slower than the rest (an estimate 1.5x the build
        before this warm-up)."""
        sample = sample_batches(len(batches), workers)
        middle = len(sample) // 2
        warm = sample[middle : middle + workers] if len(sample) > 2 * workers else []
        self._run_batches(runner, pool, [batches[i] for i in warm], texts, out, progress)
        timed = [i for i in sample if i not in set(warm)]
        started = time.perf_counter()
        self._run_batches(runner, pool, [batches[i] for i in timed], texts, out, progress)
        took = time.perf_counter() - started
        progress.estimated(took * (len(batches) - len(warm)) / max(1, len(timed)))
        chosen = set(sample)
        return [i for i in range(len(batches)) if i not in chosen]

    def _run_batches(self, session, pool, batches, texts, out, progress: BuildProgress) -> None:
        """Embed ``batches`` (lists of indices into ``texts``) into ``out``'s rows, on
        ``pool``'s threads if given, tokenising at most TOKENIZE_CHUNK texts at a time."""
        _, tokenizer = self._load()
        step = max(1, TOKENIZE_CHUNK // EMBED_BATCH)
        for first in range(0, len(batches), step):
            group = batches[first : first + step]
            rows = [i for idx in group for i in idx]
            encoded = dict(zip(rows, tokenizer.encode_batch([texts[i] for i in rows]), strict=True))
            work = [(idx, [encoded[i] for i in idx]) for idx in group]
            run = functools.partial(self._run_into, session, out)
            for n in pool.map(run, work) if pool else map(run, work):
                progress.advance(n)

    def _run_into(self, session, out: np.ndarray, work: tuple[list[int], list]) -> int:
        """One session run: ``work``'s encodings embedded into ``out``'s rows ``work[0]``."""
        rows, encoded = work
        out[rows] = self._run(session, encoded)
        return len(rows)

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


def build_workers(batches: int) -> int:
    """Single-threaded runs a build makes side by side: one per core (at most
    BUILD_WORKERS), or 1 for fewer batches than PARALLEL_LEAST per core."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    workers = max(1, min(BUILD_WORKERS, cores))
    return workers if batches >= PARALLEL_LEAST * workers else 1


def sample_batches(batches: int, workers: int = 1) -> list[int]:
    """Which of ``batches`` (in ``token_batches``' order, shortest first) the first-line
    estimate times: ``progress.spread_sample``, at least SAMPLE_LEAST runs per worker."""
    from retriever.index.progress import spread_sample

    return spread_sample(batches, SAMPLE_LEAST * workers)


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
