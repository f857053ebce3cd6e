"""A file of arrays, read without copies: the format of every array file of an index folder
(documents, handoff rule vectors, BM25).

A JSON header line (``{"meta": ..., "arrays": {name: [dtype, shape, offset]}}``), then each
array's bytes at its offset (a multiple of 8). Read, each array is a view of the file's
bytes: an ``.npz`` is read by copying every array out of a zip member, which for a large
index costs a fresh page for every 4 KB of it; and numpy parses an ``.npz`` member's header
with ``ast.literal_eval``, which once failed under threads ("AST constructor recursion
depth mismatch").
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

_ALIGN = 8


def arrays_file(arrays: dict[str, np.ndarray], meta: Any = None) -> bytes:
    """``arrays`` (and ``meta``, plain JSON) as the bytes of one file."""
    import numpy as np

    layout, chunks, offset = {}, [], 0
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        layout[name] = [array.dtype.str, list(array.shape), offset]
        chunk = array.tobytes()
        chunks.append(chunk + b"\0" * (-len(chunk) % _ALIGN))
        offset += len(chunks[-1])
    header = json.dumps({"meta": meta, "arrays": layout}).encode() + b"\n"
    header += b" " * (-len(header) % _ALIGN)
    return header + b"".join(chunks)


def read_arrays_file(data: bytes) -> tuple[Any, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of ``arrays_file``'s bytes; the arrays are read-only views of
    ``data``. ``ValueError`` when the bytes are not such a file."""
    import numpy as np

    end = data.index(b"\n")
    header = json.loads(data[:end])
    start = end + 1 + (-(end + 1) % _ALIGN)
    arrays = {}
    for name, (dtype, shape, offset) in header["arrays"].items():
        count = int(np.prod(shape, dtype=np.int64))
        if np.dtype(dtype).hasobject:
            raise ValueError(f"array {name} holds objects")
        flat = np.frombuffer(data, dtype=dtype, count=count, offset=start + offset)
        arrays[name] = flat.reshape(shape)
    return header["meta"], arrays
