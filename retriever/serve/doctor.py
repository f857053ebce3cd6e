"""``retrieve doctor``: what a search would use, and whether anything needs doing first.

Read-only and quick: it reads the skill files and the index manifest, never the model or
the vectors. ``usable`` is false (exit 1) when the index is missing, stale or damaged: a
search would build it first, and ``--no-rebuild`` users (or the hook) would get nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from retriever.present.terminal import safe


def diagnose(
    skills: list[str] | None,
    index: str | None,
    model: str | None,
    backend: str | None,
) -> dict[str, Any]:
    """The report ``retrieve doctor --json`` prints. User errors (a missing root, an
    unknown model) raise ``RetrieverError`` as everywhere else."""
    from retriever import __version__
    from retriever.errors import no_skills
    from retriever.index.embed import make_embedder
    from retriever.index.store import index_status
    from retriever.load import load_collection
    from retriever.load.changes import fingerprint_now
    from retriever.paths import index_folder, resolve_roots, user_skill_folders

    roots = resolve_roots(skills)
    embedder = make_embedder(model, backend)  # resolves the model; loads nothing
    folder = index_folder(roots, embedder.model_id, index)
    report = load_collection(roots)
    status = index_status(
        folder,
        embedder.model_id,
        lambda m: fingerprint_now(m.corpus_fingerprint, m.corpus, roots),
        # known without making anything when the export is made; else no index of it exists
        embedder.variant if embedder.runtime().ready else None,
    )
    manifest = status.manifest
    todo = []
    if not report.skills:  # an index of nothing cannot be built: say what is wrong instead
        todo.append(f"{no_skills(roots)}; point --skills at a folder of skills")
    elif not status.fresh:
        todo.append(f"build the index ({status.stale_because}): {_index_command(skills, index)}")
    return {
        "version": __version__,
        "roots": [str(r) for r in roots],
        "default_roots": None
        if skills
        else [
            {"agent": agent, "path": str(folder), "exists": folder.is_dir()}
            for agent, folder in user_skill_folders()
        ],
        "skills": len(report.skills),
        "problems": len(report.problems),
        "skipped_files": sum(p.skipped for p in report.problems),
        "index": {
            "folder": str(folder),
            "exists": folder.is_dir(),
            "version": status.version,
            "created_at": manifest.created_at if manifest else None,
            "skills": manifest.counts.skills if manifest else None,
            "documents": manifest.counts.documents if manifest else None,
            "written_by": manifest.package_version if manifest else None,
        },
        "stale": not status.fresh,
        "stale_because": status.stale_because,
        "newer_writer": status.newer_writer,
        "model": embedder.model_id,
        "backend": _backend(embedder),
        "cache": _cache(embedder),
        "server": _server(folder),
        "usable": status.fresh,
        "todo": todo,
    }


def _index_command(skills: list[str] | None, index: str | None) -> str:
    import shlex

    words = ["retrieve", "index"]
    for root in skills or []:
        words += ["--skills", root]
    if index:
        words += ["--index", index]
    return shlex.join(words)


def _backend(embedder) -> dict[str, Any]:
    """Which runtime a query would use, and where the ONNX export is (or will be)."""
    runtime = embedder.runtime()
    return {
        "runtime": runtime.name,
        "onnx_export": runtime.export,
        "export_present": runtime.export is not None and runtime.ready,
    }


def _cache(embedder) -> dict[str, Any]:
    """The shared embedding cache: its file, size and bound, and how many vectors it holds
    of this model as a build would run it (``None`` until the export is made)."""
    from retriever.index.cache import limit_from_env, shared_cache

    stats = shared_cache().stats()
    stats["enabled"] = limit_from_env() > 0
    key = embedder.cache_key if embedder.runtime().ready else None
    stats["this_model"] = stats["models"].get(key, 0) if key else None
    return stats


def _server(folder: Path) -> dict[str, Any] | None:
    """The ``retrieve serve`` of this index, if one runs and proves it is that server; or
    what a discovery file claims when no server there proves it (a stale file)."""
    import urllib.request

    from retriever.serve.discovery import announced_servers, verify

    claims = announced_servers(folder)
    server = next((s for s in claims if verify(s, 2.0)), None)
    if server is None:
        if not claims:
            return None
        return {"url": claims[0].url, "pid": claims[0].pid, "answering": False, "verified": False}
    out: dict[str, Any] = {"url": server.url, "pid": server.pid, "answering": False}
    out["verified"] = True
    request = urllib.request.Request(f"{server.url}/health")
    if server.token:
        request.add_header("Authorization", f"Bearer {server.token}")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            health = json.loads(response.read(1 << 20))
        out.update(
            answering=True,
            skills=health.get("skills"),
            index_version=(health.get("index") or {}).get("version"),
            stale=health.get("stale"),
        )
    except (OSError, ValueError, AttributeError):
        pass
    return out


def format_report(r: dict[str, Any]) -> str:
    """The report for a person: one fact a line, then what to do."""
    lines = [f"skill-retriever {r['version']}"]
    lines.append("skills roots: " + ", ".join(r["roots"]))
    for d in r["default_roots"] or []:
        state = "found" if d["exists"] else "not found"
        lines.append(f"  default root {d['path']} ({d['agent']}): {state}")
    if r["default_roots"] is not None and not any(d["exists"] for d in r["default_roots"]):
        lines.append("  (no default root exists: the bundled collection is used)")
    problems = f"{r['problems']} load problems"
    if r["skipped_files"]:
        problems += f", {r['skipped_files']} skill files left out (`retrieve index` lists why)"
    lines.append(f"skills: {r['skills']} found, {problems}")
    ix = r["index"]
    if ix["version"]:
        built = f"version {ix['version']}, built {ix['created_at']}, {ix['skills']} skills"
    else:
        built = "no index yet" if not ix["exists"] else "no usable index"
    lines.append(f"index: {ix['folder']} ({built})")
    state = f"needs building ({r['stale_because']})" if r["stale"] else "up to date"
    lines.append(f"index state: {state}")
    if r["newer_writer"]:
        lines.append(f"  written by skill-retriever {r['newer_writer']}, newer than this one")
    lines.append(f"model: {r['model']}")
    b = r["backend"]
    if b["runtime"] == "onnx":
        where = "present" if b["export_present"] else "not made yet (made on first use, once)"
        lines.append(f"backend: onnx; export {where}: {b['onnx_export']}")
    else:
        lines.append("backend: sentence-transformers (torch)")
    c = r["cache"]
    if not c["enabled"]:
        lines.append("embedding cache: off ($SKILL_RETRIEVER_CACHE_MB=0)")
    elif c.get("error"):
        lines.append(f"embedding cache: {c['path']} unusable ({c['error']})")
    else:
        held = sum(c["models"].values())
        mine = "" if c["this_model"] is None else f", {c['this_model']:,} of this model"
        lines.append(
            f"embedding cache: {c['path']} ({c['bytes'] / 2**20:.1f} MB of "
            f"{c['limit_bytes'] / 2**20:.0f} MB, {held:,} vectors{mine})"
        )
    s = r["server"]
    if s is None:
        lines.append("server: no `retrieve serve` running for this index")
    elif s["answering"]:
        lines.append(
            f"server: running at {s['url']} (pid {s['pid']}), {s['skills']} skills, "
            f"index version {s['index_version']}" + (", stale" if s.get("stale") else "")
        )
    elif not s.get("verified"):
        lines.append(
            f"server: a discovery file names pid {s['pid']} at {s['url']}, but no server "
            "there proves it serves this index (a stale file; ignored)"
        )
    else:
        lines.append(f"server: pid {s['pid']} at {s['url']} does not answer /health")
    lines += [f"to do: {t}" for t in r["todo"]] or ["ready: searches use this index as it is"]
    return "\n".join(safe(line) for line in lines)
