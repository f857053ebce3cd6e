"""What an index says about itself: its manifest, typed.

Written last into every version folder (``manifest.json``), so a folder without one is
never a usable index; read first when an index is opened, to tell whether it is the one
asked for (model, document recipe, corpus) before anything else is read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any


@dataclass(frozen=True)
class Counts:
    """How much the index holds, and how much of it its build embedded."""

    skills: int
    documents: int
    handoff_rules: int
    problems: int
    embedded: int = 0  # texts embedded by the build that made it
    cached: int = 0  # texts whose vectors it took from a cache instead


@dataclass(frozen=True)
class FileEntry:
    """One data file of a version folder, as written."""

    sha256: str
    bytes: int


@dataclass(frozen=True)
class Manifest:
    """An index's description. ``corpus`` is the record of the skill files it was built
    from (``load.changes``: stamps and hashes, kept as written); ``files`` the sha256 and
    size of every data file (set when it is saved); ``extra`` what a newer writer added
    that this version does not know (kept, never read)."""

    package_version: str
    model: str
    dimension: int
    metric: str
    faiss_index: str
    corpus_fingerprint: str
    documents: str  # the document recipe (``index.documents.recipe``)
    roots: tuple[str, ...]
    counts: Counts
    created_at: str
    build_seconds: float = 0.0
    # of which embedding the texts no earlier vector answered, and what the timed sample
    # predicted for it before (``index.progress``; ``None``: nothing was embedded)
    embed_seconds: float = 0.0
    estimated_seconds: float | None = None
    # which vectors of the model (``Embedder.variant``): "fp32", the model's own, or the id
    # of a quantised export; an index from before variants were recorded holds fp32 ones
    variant: str = "fp32"
    corpus: dict[str, Any] | None = None
    format_version: int | None = None
    files: dict[str, FileEntry] = field(default_factory=dict)
    # the unit mean of the document vectors (``index.center``): what a result's confidence
    # measures a query against; None in an index built before it (then summed when opened)
    center: tuple[float, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["roots"] = list(self.roots)
        extra = out.pop("extra")
        for key in ("corpus", "format_version", "estimated_seconds", "center"):
            if out[key] is None:
                del out[key]
        if self.center is not None:
            out["center"] = list(self.center)
        if not self.files:
            del out["files"]
        return {**extra, **out}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        """The manifest a JSON object holds; ``ValueError`` naming the first missing or
        malformed field."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        known = {f.name for f in fields(cls)}
        try:
            counts = data["counts"]
            files = data.get("files") or {}
            counted = {f.name: int(counts[f.name]) for f in fields(Counts) if f.name in counts}
            manifest = cls(
                package_version=str(data["package_version"]),
                model=str(data["model"]),
                dimension=int(data["dimension"]),
                metric=str(data["metric"]),
                faiss_index=str(data["faiss_index"]),
                corpus_fingerprint=str(data["corpus_fingerprint"]),
                documents=str(data["documents"]),
                roots=tuple(str(r) for r in data["roots"]),
                counts=Counts(**counted),
                created_at=str(data["created_at"]),
                build_seconds=float(data.get("build_seconds", 0.0)),
                embed_seconds=float(data.get("embed_seconds", 0.0)),
                estimated_seconds=_number_or_none(data.get("estimated_seconds")),
                variant=str(data.get("variant", "fp32")),
                corpus=data.get("corpus"),
                format_version=data.get("format_version"),
                center=_center(data.get("center")),
                files={
                    str(k): FileEntry(str(v["sha256"]), int(v["bytes"])) for k, v in files.items()
                },
                extra={k: v for k, v in data.items() if k not in known},
            )
        except KeyError as e:
            raise ValueError(f"no '{e.args[0]}' field") from e
        except (TypeError, AttributeError) as e:
            raise ValueError(f"a field of the wrong type ({e})") from e
        return manifest

    def with_files(self, files: dict[str, FileEntry], format_version: int) -> Manifest:
        return replace(self, files=files, format_version=format_version)


def _number_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _center(value: Any) -> tuple[float, ...] | None:
    """A recorded center as floats; ``None`` when absent or not a list of numbers (an index
    without one still opens: its center is summed from its vectors)."""
    if not isinstance(value, list) or not all(isinstance(x, int | float) for x in value):
        return None
    return tuple(float(x) for x in value)
