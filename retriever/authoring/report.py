"""``retrieve eval --self --html FILE`` and ``eval --triggers --html FILE``: one
self-contained page each.

No network and no external assets: inline CSS and inline SVG. The self-evaluation page holds
the overall numbers, the worst skills with what steals their questions, and a bar chart of
the top confusion pairs with one example question under each bar, the picture an author
would rather look at than read. The trigger page holds recall and false triggers per skill
and every failed query with the skill that took it. Every skill name links to its file
(``file://``), which is what an author opens next. Every number sits in an element with a
``data-`` attribute naming it, so a test (or a script) can read the page back and compare it
with the JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from retriever.authoring.selfeval import METRICS, SelfEvalReport

if TYPE_CHECKING:
    from retriever.authoring.triggers import TriggerReport

WORST = 25  # skills in the table
BARS = 20  # confusion pairs in the chart

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .3em .5em; text-align: left;
         vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.overall td { font-size: 1.3em; font-weight: 600; }
.muted { color: #777; } .bad { color: #b00020; } svg text { font: 12px system-ui; }
svg text.example { fill: #555; font-style: italic; } a { color: #0b57d0; }
"""
CAPTION = 120  # characters of the example question shown under a bar


def skill_link(skill_id: str, paths: Mapping[str, str] | None) -> str:
    """The skill's id as a link to its file (``file://``), or plain when its file is not
    known (the page must not point anywhere it cannot vouch for)."""
    path = (paths or {}).get(skill_id)
    if not path:
        return escape(skill_id)
    uri = Path(path).absolute().as_uri()
    return f'<a href="{escape(uri)}" data-file="{escape(skill_id)}">{escape(skill_id)}</a>'


def _num(value: float) -> str:
    # from the 4 decimals the JSON holds, so that the page and `--json` never differ in the
    # last digit (0.75849 would show 0.758 here and round to 0.759 from the JSON's 0.7585)
    return f"{round(value, 4):.3f}"


def _bar_chart(report: SelfEvalReport, paths: Mapping[str, str] | None = None) -> str:
    pairs = report.pairs[:BARS]
    if not pairs:
        return '<p class="muted">No question ranked another skill first.</p>'
    # each row: the bar, then one line under it with an example question it stands for
    width, bar_h, caption_h, gap, label_w = 900, 18, 16, 8, 380
    row_h = bar_h + caption_h + gap
    top = max(p["count"] for p in pairs)
    rows = []
    for n, p in enumerate(pairs):
        y = n * row_h
        w = max(2, int((width - label_w - 60) * p["count"] / top))
        example = p["example"]
        shown = example if len(example) <= CAPTION else example[: CAPTION - 1] + "…"
        rows.append(
            f'<g data-pair="{escape(p["skill"])}|{escape(p["taken_by"])}">'
            f'<text x="{label_w - 8}" y="{y + 13}" text-anchor="end">'
            f"{skill_link(p['skill'], paths)} → {skill_link(p['taken_by'], paths)}</text>"
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="#d95f02">'
            f"<title>{escape(example)}</title></rect>"
            f'<text x="{label_w + w + 6}" y="{y + 13}" data-count="{p["count"]}">'
            f"{p['count']} of {p['of']}</text>"
            f'<text class="example" x="{label_w}" y="{y + bar_h + 12}" '
            f'data-example="{escape(example)}">e.g. “{escape(shown)}”</text></g>'
        )
    height = len(pairs) * row_h
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="top confusion pairs">{"".join(rows)}</svg>'
    )


def render_html(report: SelfEvalReport, title: str, paths: Mapping[str, str] | None = None) -> str:
    """The page for ``report``; ``title`` names the collection, ``paths`` each skill's
    file (skill id -> path) for the links."""
    overall = "".join(
        f'<td class="num" data-metric="{m}">{_num(report.overall[m])}</td>' for m in METRICS
    )
    sources = "".join(
        f'<tr><td>{escape(s)}</td><td class="num">{int(ms["n"])}</td>'
        + "".join(
            f'<td class="num" data-source="{escape(s)}" data-metric="{m}">{_num(ms[m])}</td>'
            for m in METRICS
        )
        + "</tr>"
        for s, ms in report.by_source.items()
    )
    worst = []
    for s in report.per_skill[:WORST]:
        steal = s.confused_with[0] if s.confused_with else None
        thief = (
            f"{skill_link(steal['skill'], paths)} ({steal['count']}): "
            f'<span class="muted">{escape(steal["example"][:140])}</span>'
            if steal
            else '<span class="muted">-</span>'
        )
        worst.append(
            f'<tr data-skill="{escape(s.skill_id)}"><td>{skill_link(s.skill_id, paths)}</td>'
            f'<td class="num">{s.questions}</td>'
            + "".join(
                f'<td class="num" data-metric="{m}">{_num(s.metrics[m])}</td>' for m in METRICS
            )
            + f"<td>{thief}</td></tr>"
        )
    unreached = ", ".join(skill_link(s, paths) for s in report.unreached) or "none"
    takers = (
        ", ".join(f"{skill_link(t['skill'], paths)} ({t['takes']})" for t in report.takers)
        or "none"
    )
    head = "".join(f'<th class="num">{m}</th>' for m in METRICS)
    kinds = ", ".join(escape(s.replace("_", " ")) for s in report.by_source) or "none"
    return _page(
        f"Self-evaluation: {title}",
        f"""<h1>Self-evaluation of {escape(title)}</h1>
<p>{report.skills} skills, <span data-questions="{report.questions}">{report.questions}</span>
of their own questions ({kinds}), each ranked by an index that does not hold it
({report.folds} folds by item), in {report.seconds:.0f} s.</p>
<table class="overall"><tr>{head}</tr><tr>{overall}</tr></table>
<h2>By source</h2>
<table><tr><th>source</th><th class="num">questions</th>{head}</tr>{sources}</table>
<h2>Skills nothing reaches</h2>
<p class="bad" data-unreached="{len(report.unreached)}">{unreached}</p>
<h2>Skills that take the most questions of others</h2><p>{takers}</p>
<h2>Top confusion pairs (skill → the skill ranked first on its questions)</h2>
{_bar_chart(report, paths)}
<h2>The {min(WORST, len(report.per_skill))} worst skills</h2>
<table><tr><th>skill</th><th class="num">questions</th>{head}
<th>most often ranked first instead</th></tr>{"".join(worst)}</table>""",
    )


def _table(head: tuple[str, ...], rows: list[str]) -> str:
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f"<table><tr>{cells}</tr>{''.join(rows)}</table>"


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{escape(title)}</title><style>{_STYLE}</style></head>
<body>
{body}
</body></html>
"""


def render_triggers_html(
    report: TriggerReport, paths: Mapping[str, str] | None = None, title: str = ""
) -> str:
    """The page for a trigger eval ``report``: the totals, recall and false triggers per
    skill (worst first), and each failed query with the skill that took it."""
    total = report.total
    recall = "-" if total.recall is None else _num(total.recall)
    rows = []
    for s in report.per_skill:
        r = "-" if s.recall is None else _num(s.recall)
        rows.append(
            f'<tr data-skill="{escape(s.skill_id)}"><td>{skill_link(s.skill_id, paths)}</td>'
            f'<td class="num" data-should="{s.should}">{s.hits} of {s.should}</td>'
            f'<td class="num" data-metric="recall">{r}</td>'
            f'<td class="num">{s.should_not}</td>'
            f'<td class="num" data-false="{s.false_triggers}">{s.false_triggers}</td></tr>'
        )
    misses = []
    for s in report.per_skill:
        for m in s.misses:
            taken = (
                '<span class="muted">no match: nothing added</span>'
                if m["no_match"]
                else skill_link(m["taken_by"], paths)
            )
            rank = m["rank"] or "not in the top 10"
            misses.append(
                f'<tr data-miss="{escape(s.skill_id)}"><td>{skill_link(s.skill_id, paths)}</td>'
                f"<td>{escape(m['query'])}</td><td>{taken}</td>"
                f'<td class="num">{rank}</td></tr>'
            )
    false = [
        f'<tr data-false-trigger="{escape(s.skill_id)}"><td>{skill_link(s.skill_id, paths)}'
        f'</td><td>{escape(f["query"])}</td><td class="num">{f["rank"]}</td></tr>'
        for s in report.per_skill
        for f in s.false
    ]
    none = '<p class="muted">none</p>'
    name = f" of {title}" if title else ""
    return _page(
        f"Trigger evals{name}",
        f"""<h1>Trigger evals{escape(name)}</h1>
<p><span data-cases="{report.cases}">{report.cases}</span> queries for
{len(report.per_skill)} skill{"s" * (len(report.per_skill) != 1)} from {len(report.files)}
file{"s" * (len(report.files) != 1)}. A skill triggers when it
ranks in the top <span data-k="{report.k}">{report.k}</span> and the result is not "no match"
(what the Claude Code hook adds to a prompt). In {report.seconds:.0f} s.</p>
<table class="overall"><tr><th>passed</th><th>should trigger: triggered</th>
<th class="num">recall</th><th>should not: false triggers</th></tr>
<tr><td data-passed="{report.passed}">{report.passed} of {report.cases}</td>
<td>{total.hits} of {total.should}</td><td class="num" data-metric="recall">{recall}</td>
<td data-false="{total.false_triggers}">{total.false_triggers} of {total.should_not}
</td></tr></table>
<h2>Per skill, worst first</h2>
<table><tr><th>skill</th><th class="num">should trigger: triggered</th>
<th class="num">recall</th><th class="num">should not</th>
<th class="num">false triggers</th></tr>{"".join(rows)}</table>
<h2>Should trigger and did not</h2>
{_table(("skill", "query", "ranked first instead", "its rank"), misses) if misses else none}
<h2>Should not trigger and did</h2>
{_table(("skill", "query", "its rank"), false) if false else none}""",
    )
