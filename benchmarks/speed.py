"""Speed benchmark: CLI start-up, query latency, index builds, memory, and scale.

Run from the repository root::

    python -m benchmarks.speed                # the 462-skill shared corpus
    python -m benchmarks.speed --scale        # + both shared corpora together + 50,000 skills

Every figure is measured here and now, in this process or in fresh subprocesses: median and
p99 over repeated runs (with few runs, p99 is the slowest run). The sentence-transformers
path runs beside the ONNX fast path in the same run, and the ratio is printed. Results are
also written as JSON (``--json-out``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import BenchError, fail, require_data, shared_dir  # noqa: E402
from benchmarks.timing import query_times, stats  # noqa: E402

SHARED = shared_dir()  # $SKILL_RETRIEVER_SHARED or ../shared

REPO = Path(__file__).resolve().parent.parent
QUERY = "my webhook handler processes the same event twice"
HEAVY = ("torch", "sentence_transformers", "faiss", "transformers")


# -- measuring ------------------------------------------------------------------------------


def run_process(
    cmd: list[str], env: dict | None = None, stdin: bytes | None = None
) -> tuple[float, int]:
    """Wall time of a fresh process, and its peak resident memory in KB.

    Linux counts a child's peak from the fork, so the figure is only meaningful while this
    benchmark process itself is small (it is run before the scale sections).
    """
    start = time.perf_counter()
    p = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE if stdin is not None else None,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    if stdin is not None and p.stdin:
        p.stdin.write(stdin)
        p.stdin.close()
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - start
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode() if p.stderr else ""
    if p.returncode != 0:
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(cmd)}\n{err}")
    return elapsed, usage.ru_maxrss


def time_process(
    cmd: list[str], runs: int, env: dict | None = None, stdin: bytes | None = None
) -> dict[str, float]:
    run_process(cmd, env, stdin)  # warm the page cache; not counted
    times, rss = [], []
    for _ in range(runs):
        t, m = run_process(cmd, env, stdin)
        times.append(t)
        rss.append(m)
    return {**stats(times), "peak_rss_mb": max(rss) / 1024}


def retrieve_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "retriever.cli", "-q", *args]


def heavy_modules(code: str) -> list[str]:
    loaded = "{m.split('.')[0] for m in sys.modules}"
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted({loaded} & {set(HEAVY)!r})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def query_latencies(retriever, queries: list[str]) -> dict[str, float]:
    return stats(query_times(retriever, queries))


def usual_index(skills: Path) -> Path:
    """The corpus's own index folder (the one ``retrieve search --skills`` uses), built if
    needed."""
    from retriever import SkillRetriever

    return SkillRetriever.open(skills).index_dir


def write_report(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
    print(f"wrote {path}")


def dev_queries(limit: int | None = None) -> list[str]:
    path = SHARED / "eval" / "dev-queries.jsonl"
    qs = [json.loads(line)["query"] for line in path.read_text().splitlines() if line.strip()]
    return qs[:limit] if limit else qs


# -- sections -------------------------------------------------------------------------------


def bench_startup(corpus: Path, index: Path, runs: int) -> dict:
    st_import = time_process([sys.executable, "-c", "import sentence_transformers"], 3)
    search_args = ["search", "--skills", str(corpus), "--index", str(index), QUERY]
    fast = time_process(retrieve_cmd(*search_args, "--backend", "onnx"), runs)
    slow = time_process(retrieve_cmd(*search_args, "--backend", "torch"), 3)
    script = shutil.which("retrieve")
    via_script = time_process([script, "-q", *search_args], runs) if script else None
    return {
        "import_sentence_transformers_s": st_import,
        "cli_search_fast_s": fast,
        "cli_search_sentence_transformers_s": slow,
        "cli_search_fast_over_st_import": fast["median"] / st_import["median"],
        "cli_search_st_over_fast": slow["median"] / fast["median"],
        "cli_search_console_script_s": via_script,
        "cli_help_s": time_process(retrieve_cmd("--help"), runs),
        "import_retriever_s": time_process([sys.executable, "-c", "import retriever"], runs),
        "heavy_modules_after_import": heavy_modules("import retriever"),
        "heavy_modules_after_help": heavy_modules(
            "from retriever import cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:\n"
            "    pass"
        ),
    }


HOOK_EVENT = {
    "session_id": "speed",
    "transcript_path": "/tmp/speed.jsonl",
    "cwd": str(REPO),
    "permission_mode": "default",
    "hook_event_name": "UserPromptSubmit",
    "prompt": QUERY,
}


def bench_hook(corpus: Path, index: Path, runs: int) -> dict:
    """`retrieve hook claude-code` per prompt: searching in-process, then asking a running
    `retrieve serve` of the same index."""
    from retriever.serve.discovery import find_server

    event = json.dumps(HOOK_EVENT).encode()
    hook = retrieve_cmd("hook", "claude-code", "--skills", str(corpus), "--index", str(index))
    check = subprocess.run(hook, input=event, capture_output=True, check=True)
    if b"additionalContext" not in check.stdout:
        raise SystemExit(f"the hook added nothing: {check.stderr.decode()}")
    out: dict = {"in_process_s": None, "via_server_s": None}
    if find_server(index) is None:  # else an outside server would answer both
        out["in_process_s"] = time_process(hook, runs, stdin=event)
    with running_server(corpus, index):
        out["via_server_s"] = time_process(hook, runs, stdin=event)
    return out


@contextlib.contextmanager
def running_server(corpus: Path, index: Path) -> Iterator[str]:
    """A `retrieve serve` of ``corpus`` on a free loopback port while the block runs; its
    URL."""
    server = subprocess.Popen(
        retrieve_cmd("serve", "--port", "0", "--skills", str(corpus), "--index", str(index)),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline() if server.stdout else ""
        if not line.startswith("serving "):
            raise SystemExit(f"retrieve serve did not start: {line!r}")
        yield line.split(" at ", 1)[1].split(": ", 1)[0]
    finally:
        server.terminate()
        server.wait(30)


def bench_queries(corpus: Path, index: Path) -> dict:
    from retriever import SkillRetriever

    queries = dev_queries()
    fast = SkillRetriever.open(corpus, index_dir=index, backend="onnx", rebuild="never")
    slow = SkillRetriever.open(corpus, index_dir=index, backend="torch", rebuild="never")
    f, s = query_latencies(fast, queries), query_latencies(slow, queries)
    return {
        "api_query_fast_s": f,
        "api_query_sentence_transformers_s": s,
        "api_query_st_over_fast": s["median"] / f["median"],
        "queries": len(queries),
    }


def bench_builds(corpus: Path, workdir: Path, edits: int) -> dict:
    """A full build in a fresh folder, then rebuilds after editing one skill file."""
    full_index = workdir / "full"
    # the embedding cache off: a full build embeds every text, as a first one does
    t_full, rss = run_process(
        retrieve_cmd("index", "--skills", str(corpus), "--index", str(full_index)),
        env={"SKILL_RETRIEVER_CACHE_MB": "0"},
    )
    manifest = json.loads((full_index / "current" / "manifest.json").read_text())
    texts = manifest["counts"]["embedded"]

    copy = workdir / "corpus"
    shutil.copytree(corpus, copy)
    for p in copy.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    inc_index = workdir / "incremental"
    shutil.copytree(full_index, inc_index, symlinks=True)
    run_process(retrieve_cmd("index", "--skills", str(copy), "--index", str(inc_index)))
    skill_files = sorted(copy.rglob("skill.yaml"))
    times, embedded = [], []
    for i in range(edits):
        f = skill_files[(i * 97) % len(skill_files)]
        text = f.read_text()
        f.write_text(text.replace("description:", f"description: (edit {i})", 1))
        t, _ = run_process(retrieve_cmd("index", "--skills", str(copy), "--index", str(inc_index)))
        times.append(t)
        m = json.loads((inc_index / "current" / "manifest.json").read_text())
        embedded.append(m["counts"]["embedded"])
    return {
        "full_build_s": t_full,
        "full_build_peak_rss_mb": rss / 1024,
        "texts_embedded": texts,
        "texts_per_s": texts / t_full,
        "rebuild_after_one_edit_s": stats(times),
        "texts_embedded_per_edit": embedded,
    }


def bench_two_corpora(workdir: Path) -> dict:
    from retriever import SkillRetriever

    roots = [SHARED / "corpora" / "spawner-skills", SHARED / "corpora" / "agent-skills"]
    index = workdir / "both"
    t, rss = run_process(
        retrieve_cmd(
            "index", *sum((["--skills", str(r)] for r in roots), []), "--index", str(index)
        ),
        env={"SKILL_RETRIEVER_CACHE_MB": "0"},  # every text embedded (first_run.py: cached)
    )
    retriever = SkillRetriever.open(roots, index_dir=index, rebuild="never")
    return {
        "skills": len(retriever.skills),
        "documents": retriever.document_count,
        "build_s": t,
        "build_peak_rss_mb": rss / 1024,
        "api_query_s": query_latencies(retriever, dev_queries()),
    }


def bench_synthetic(
    corpus_index: Path, n_skills: int, n_queries: int, probes: tuple[int, ...] = ()
) -> dict:
    """A collection of ``n_skills`` made from the real ones, embedded without the model.

    Each synthetic skill copies a real skill's documents; its vectors are the real vectors
    plus fixed random noise (cosine ~0.9 to the original), so every vector is distinct and
    the geometry stays that of real skill text. Embedding 50,000 skills for real would take
    hours here (see texts_per_s); this measures everything after embedding.
    """
    import resource

    import retriever.index.vectors as vectors_module
    from retriever.index.documents import Document
    from retriever.index.embed import make_embedder
    from retriever.index.lexical import build_lexical
    from retriever.index.store import load_index
    from retriever.index.tables import SkillIndex
    from retriever.index.vectors import VectorIndex
    from retriever.search.rank import ScoringConfig
    from retriever.search.searcher import Searcher
    from retriever.skill import Skill

    real = load_index(corpus_index)
    base_vectors = real.vectors.all_vectors()
    rows_by_skill: dict[str, list[int]] = {}
    for row, d in enumerate(real.documents):
        rows_by_skill.setdefault(d.skill_id, []).append(row)
    rng = np.random.default_rng(7)

    skills, documents, chunks, rule_chunks = [], [], [], []
    rule_vec_by_skill, r = {}, 0
    for s in real.skills:
        rule_vec_by_skill[s.id] = real.rule_vectors[r : r + len(s.handoffs)]
        r += len(s.handoffs)
    t0 = time.perf_counter()
    for i in range(n_skills):
        src = real.skills[i % len(real.skills)]
        sid = f"{src.id}--{i}"
        skills.append(
            Skill(
                **{
                    **src.to_dict(),
                    "id": sid,
                    "patterns": src.patterns,
                    "anti_patterns": src.anti_patterns,
                    "handoffs": src.handoffs,
                    "triggers": src.triggers,
                    "owns": src.owns,
                    "tags": src.tags,
                }
            )
        )
        rows = rows_by_skill[src.id]
        documents += [
            Document(
                sid,
                real.documents[j].kind,
                real.documents[j].field,
                real.documents[j].text,
                real.documents[j].item,
            )
            for j in rows
        ]
        v = base_vectors[rows] + rng.standard_normal(
            (len(rows), base_vectors.shape[1]), dtype=np.float32
        ) * (0.5 / 19.6)
        chunks.append(v / np.linalg.norm(v, axis=1, keepdims=True))
        rule_chunks.append(rule_vec_by_skill[src.id])
    vectors = np.concatenate(chunks).astype(np.float32)
    rule_vectors = np.concatenate(rule_chunks).astype(np.float32)
    make_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    by_skill: dict[str, list[str]] = {}
    for d in documents:
        by_skill.setdefault(d.skill_id, []).append(d.text)
    lexical = build_lexical(["\n".join(by_skill[s.id]) for s in skills])
    bm25_s = time.perf_counter() - t0
    out = {
        "skills": n_skills,
        "documents": len(documents),
        "generate_s": make_s,
        "bm25_build_s": bm25_s,
    }
    embedder = make_embedder()
    queries = dev_queries(n_queries)
    results = {}
    limit = vectors_module.EXACT_MAX_DOCUMENTS
    for kind in ("exact", "ivf"):
        # the switch moved to force one kind or the other at this size; restored below
        vectors_module.EXACT_MAX_DOCUMENTS = 10**12 if kind == "exact" else 0
        try:
            t = time.perf_counter()
            index = VectorIndex.build(vectors)
            build_s = time.perf_counter() - t
        finally:
            vectors_module.EXACT_MAX_DOCUMENTS = limit
        stored = SkillIndex({}, index, tuple(documents), tuple(skills), rule_vectors, lexical)
        t = time.perf_counter()
        searcher = Searcher(stored, embedder, ScoringConfig())
        open_s = time.perf_counter() - t
        lat, ranked = [], []
        for q in queries[:5]:
            searcher.search(q, k=10)
        for q in queries:
            t = time.perf_counter()
            ranked.append(searcher.search(q, k=10).skill_ids[:10])
            lat.append(time.perf_counter() - t)
        results[kind] = ranked
        out[kind] = {
            "index": index.kind,
            "index_build_s": build_s,
            "searcher_setup_s": open_s,
            "query_s": stats(lat),
        }
        if kind == "ivf":  # kept for the probe comparison below
            ivf_index, ivf_searcher = index, searcher
        del index, stored, searcher
    same = sum(a == b for a, b in zip(results["exact"], results["ivf"], strict=True))
    overlap = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(results["exact"], results["ivf"], strict=True)]
    )
    out["ivf_top10_identical_share"] = same / len(queries)
    out["ivf_top10_overlap"] = float(overlap)
    if probes:  # the same IVF index, probing more lists: agreement against speed
        out["ivf_probes"] = {}
        for p in probes:
            ivf_index.probes = p
            lat, ranked = [], []
            for q in queries:
                t = time.perf_counter()
                ranked.append(ivf_searcher.search(q, k=10).skill_ids[:10])
                lat.append(time.perf_counter() - t)
            agree = sum(a == b for a, b in zip(results["exact"], ranked, strict=True))
            out["ivf_probes"][p] = {"identical_share": agree / len(queries), "query_s": stats(lat)}
    out["vectors_mb"] = vectors.nbytes / 2**20
    out["process_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


# -- report ---------------------------------------------------------------------------------


def print_report(r: dict) -> None:
    def row(name: str, s: dict | None, unit: str = "s") -> None:
        if s:
            scale = 1000 if unit == "ms" else 1
            print(
                f"  {name:<52} median {s['median'] * scale:8.3f} {unit}   "
                f"p99 {s['p99'] * scale:8.3f} {unit}   ({s['runs']} runs)"
            )

    s = r["startup"]
    print("Start-up (fresh processes)")
    row("python -c 'import sentence_transformers'", s["import_sentence_transformers_s"])
    row("retrieve search (ONNX fast path)", s["cli_search_fast_s"])
    row("retrieve search (sentence-transformers path)", s["cli_search_sentence_transformers_s"])
    row("retrieve search via the console script", s["cli_search_console_script_s"])
    row("retrieve --help", s["cli_help_s"])
    row("python -c 'import retriever'", s["import_retriever_s"])
    h = r.get("hook")
    if h:
        row("retrieve hook claude-code, searching in-process", h["in_process_s"])
        row("retrieve hook claude-code, asking a running serve", h["via_server_s"])
    print(
        f"  fast search / import sentence_transformers: "
        f"{s['cli_search_fast_over_st_import']:.3f}x;  sentence-transformers search / fast "
        f"search: {s['cli_search_st_over_fast']:.1f}x"
    )
    print(
        f"  peak memory of a search process: {s['cli_search_fast_s']['peak_rss_mb']:.0f} MB "
        f"(fast), {s['cli_search_sentence_transformers_s']['peak_rss_mb']:.0f} MB (st)"
    )
    print(
        f"  heavy modules after import retriever: {s['heavy_modules_after_import']}, "
        f"after --help: {s['heavy_modules_after_help']}"
    )
    q = r["queries"]
    print(f"Query through the API, model loaded ({q['queries']} dev queries)")
    row("ONNX fast path", q["api_query_fast_s"], "ms")
    row("sentence-transformers path", q["api_query_sentence_transformers_s"], "ms")
    b = r.get("builds")
    if b:
        print("Index builds (fresh process each)")
        print(
            f"  full build: {b['full_build_s']:.1f} s for {b['texts_embedded']} texts "
            f"({b['texts_per_s']:.0f} texts/s), peak {b['full_build_peak_rss_mb']:.0f} MB"
        )
        row("rebuild after one skill file changes", b["rebuild_after_one_edit_s"])
        print(f"  texts embedded per edit: {b['texts_embedded_per_edit']}")
    t = r.get("two_corpora")
    if t:
        print(
            f"Both shared corpora: {t['skills']} skills, {t['documents']} documents, "
            f"build {t['build_s']:.1f} s, peak {t['build_peak_rss_mb']:.0f} MB"
        )
        row("query", t["api_query_s"], "ms")
    y = r.get("synthetic")
    if y:
        print(f"Synthetic: BM25 build {y['bm25_build_s']:.1f} s")
        print(
            f"Synthetic: {y['skills']} skills, {y['documents']} documents "
            f"({y['vectors_mb']:.0f} MB of vectors), "
            f"process peak {y['process_peak_rss_mb']:.0f} MB"
        )
        for kind in ("exact", "ivf"):
            k = y[kind]
            print(
                f"  {kind} ({k['index']}): index build {k['index_build_s']:.1f} s, "
                f"searcher setup {k['searcher_setup_s']:.1f} s"
            )
            row(f"{kind} query", k["query_s"], "ms")
        print(
            f"  IVF top-10 identical to exact on {y['ivf_top10_identical_share']:.1%} of "
            f"queries; mean overlap {y['ivf_top10_overlap']:.3f}"
        )
        for p, v in (y.get("ivf_probes") or {}).items():
            print(
                f"  IVF probing {p} lists: top-10 identical on {v['identical_share']:.1%}; "
                f"query median {v['query_s']['median'] * 1000:.1f} ms, "
                f"p99 {v['query_s']['p99'] * 1000:.1f} ms"
            )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--skills", type=Path, default=SHARED / "corpora" / "spawner-skills")
    p.add_argument("--runs", type=int, default=10, help="fresh processes per CLI figure")
    p.add_argument("--edits", type=int, default=5, help="one-file edits timed")
    p.add_argument("--skip-builds", action="store_true", help="skip the full-build section")
    p.add_argument(
        "--scale",
        action="store_true",
        help="also both shared corpora together and a synthetic collection",
    )
    p.add_argument("--synthetic-skills", type=int, default=50_000)
    p.add_argument("--synthetic-queries", type=int, default=300)
    p.add_argument(
        "--ivf-probes",
        default="",
        help="comma-separated IVF probe counts to compare (e.g. 96,192,384)",
    )
    p.add_argument(
        "--no-two-corpora",
        action="store_true",
        help="with --scale, skip the both-corpora build (about 10 minutes)",
    )
    p.add_argument("--json-out", type=Path, default=REPO / "benchmarks/results/speed.json")
    args = p.parse_args(argv)
    try:
        require_data(args.skills, [SHARED / "eval" / "dev-queries.jsonl"])
    except BenchError as e:
        fail("speed", str(e))

    os.chdir(REPO)
    report: dict = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "corpus": str(args.skills),
    }

    def save() -> None:  # after every section: a crash late on keeps what was measured
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=1))

    try:
        with tempfile.TemporaryDirectory(prefix="speed-") as tmp:
            work = Path(tmp)
            if args.skip_builds:  # the corpus's usual index, built if needed
                index = usual_index(args.skills)
            else:
                report["builds"] = bench_builds(args.skills, work, args.edits)
                index = work / "full"
                save()
            report["startup"] = bench_startup(args.skills, index, args.runs)
            save()
            report["hook"] = bench_hook(args.skills, index, args.runs)
            save()
            report["queries"] = bench_queries(args.skills, index)
            save()
            if args.scale:
                if not args.no_two_corpora:
                    report["two_corpora"] = bench_two_corpora(work)  # before the big one:
                    save()  # see run_process on memory
                probes = tuple(int(p) for p in args.ivf_probes.split(",") if p.strip())
                report["synthetic"] = bench_synthetic(
                    index, args.synthetic_skills, args.synthetic_queries, probes
                )
                save()
    finally:
        if "startup" in report and "queries" in report:
            print_report(report)
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
