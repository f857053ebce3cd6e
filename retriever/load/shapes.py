"""Small helpers that turn the loose shapes real skill files use into plain text and lists.

Real collections write the same field as a string, a list, or a map keyed by name; these
helpers are the one place that knows those shapes.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any


def text_of(value: Any) -> str:
    """Readable text for any YAML value: strings as they are, lists and maps flattened."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (bool, int, float, _dt.date)):
        return str(value)
    if isinstance(value, list):
        return "; ".join(t for t in (text_of(v) for v in value) if t)
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            t = text_of(v)
            if t:
                parts.append(f"{k}: {t}")
        return "; ".join(parts)
    return str(value).strip()


def first_text(item: dict[str, Any], *keys: str) -> str:
    """The text of the first key of ``keys`` that ``item`` has with a non-empty value."""
    for key in keys:
        text = text_of(item.get(key))
        if text:
            return text
    return ""


def strings_of(value: Any, skip_keys: tuple[str, ...] = ()) -> tuple[str, ...]:
    """A flat tuple of non-empty strings from a string, a list, or a map of lists.

    Map keys in ``skip_keys`` are left out (e.g. file globs among a skill's triggers).
    """
    out: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for k, x in v.items():
                if str(k) not in skip_keys:
                    walk(x)
        else:
            t = text_of(v)
            if t:
                out.append(t)

    walk(value)
    return tuple(dict.fromkeys(out))  # de-duplicated, order kept


def named_items(value: Any) -> list[tuple[str, Any]]:
    """The items of a list, or the ``(name, item)`` pairs of a map keyed by name.

    List items get an empty name hint.
    """
    if isinstance(value, list):
        return [("", v) for v in value]
    if isinstance(value, dict):
        return [(str(k), v) for k, v in value.items()]
    return []


def humanize(key: str) -> str:
    """``"cache_aside-pattern"`` -> ``"Cache aside pattern"``: a readable name from a map key."""
    words = key.replace("_", " ").replace("-", " ").split()
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def first_sentence(text: str, limit: int = 240) -> str:
    """The first sentence (or line) of ``text``, at most ``limit`` characters."""
    text = " ".join(text.split())
    for stop in (". ", "! ", "? "):
        pos = text.find(stop)
        if 0 < pos < limit:
            return text[: pos + 1]
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def first_paragraph(text: str) -> str:
    """The first paragraph of Markdown or plain text that is not a heading."""
    for block in text.strip().split("\n\n"):
        lines = [ln for ln in block.strip().splitlines() if not ln.lstrip().startswith("#")]
        para = " ".join(ln.strip() for ln in lines).strip()
        if para:
            return para
    return ""
