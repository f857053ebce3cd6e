"""``retrieve eval --self --html FILE``: the self-evaluation as one self-contained page.

No network and no external assets: inline CSS and inline SVG. The page holds the overall
numbers, the worst skills with what steals their questions, and a bar chart of the top
confusion pairs, the picture an author would rather look at than read. Every number sits in
an element with a ``data-`` attribute naming it, so a test (or a script) can read the page
back and compare it with the JSON.
"""

from __future__ import annotations

from html import escape

from retriever.authoring.selfeval import METRICS, SelfEvalReport

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
"""


def _num(value: float) -> str:
    return f"{value:.3f}"


def _bar_chart(report: SelfEvalReport) -> str:
    pairs = report.pairs[:BARS]
    if not pairs:
        return '<p class="muted">No question ranked another skill first.</p>'
    width, bar_h, gap, label_w = 900, 18, 6, 380
    top = max(p["count"] for p in pairs)
    rows = []
    for n, p in enumerate(pairs):
        y = n * (bar_h + gap)
        w = max(2, int((width - label_w - 60) * p["count"] / top))
        label = f"{p['skill']} → {p['taken_by']}"
        rows.append(
            f'<g data-pair="{escape(p["skill"])}|{escape(p["taken_by"])}">'
            f'<text x="{label_w - 8}" y="{y + 13}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="#d95f02">'
            f"<title>{escape(p['example'])}</title></rect>"
            f'<text x="{label_w + w + 6}" y="{y + 13}" data-count="{p["count"]}">'
            f"{p['count']} of {p['of']}</text></g>"
        )
    height = len(pairs) * (bar_h + gap)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="top confusion pairs">{"".join(rows)}</svg>'
    )


def render_html(report: SelfEvalReport, title: str) -> str:
    """The page for ``report``; ``title`` names the collection."""
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
            f"{escape(steal['skill'])} ({steal['count']}): "
            f'<span class="muted">{escape(steal["example"][:140])}</span>'
            if steal
            else '<span class="muted">-</span>'
        )
        worst.append(
            f'<tr data-skill="{escape(s.skill_id)}"><td>{escape(s.skill_id)}</td>'
            f'<td class="num">{s.questions}</td>'
            + "".join(
                f'<td class="num" data-metric="{m}">{_num(s.metrics[m])}</td>' for m in METRICS
            )
            + f"<td>{thief}</td></tr>"
        )
    unreached = ", ".join(escape(s) for s in report.unreached) or "none"
    takers = ", ".join(f"{escape(t['skill'])} ({t['takes']})" for t in report.takers) or "none"
    head = "".join(f'<th class="num">{m}</th>' for m in METRICS)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Self-evaluation: {escape(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>Self-evaluation of {escape(title)}</h1>
<p>{report.skills} skills, <span data-questions="{report.questions}">{report.questions}</span>
of their own questions (validation messages, sharp-edge symptoms and situations,
<code>receives_from</code> contexts), each ranked by an index that does not hold it
({report.folds} folds by item), in {report.seconds:.0f} s.</p>
<table class="overall"><tr>{head}</tr><tr>{overall}</tr></table>
<h2>By source</h2>
<table><tr><th>source</th><th class="num">questions</th>{head}</tr>{sources}</table>
<h2>Skills nothing reaches</h2>
<p class="bad" data-unreached="{len(report.unreached)}">{unreached}</p>
<h2>Skills that take the most questions of others</h2><p>{takers}</p>
<h2>Top confusion pairs (skill → the skill ranked first on its questions)</h2>
{_bar_chart(report)}
<h2>The {min(WORST, len(report.per_skill))} worst skills</h2>
<table><tr><th>skill</th><th class="num">questions</th>{head}
<th>most often ranked first instead</th></tr>{"".join(worst)}</table>
</body></html>
"""
