"""``storycluster report --out report.html``: one self-contained HTML file for an editor (no network needed
to open it): a summary, charts of group sizes and stories over time (matplotlib, inlined as SVG), which
sources reprint whom (an HTML table, so that Arabic outlet names keep their shaping and direction), and the
groups with representative, members, sources, dates, tier and score. Arabic runs right to left.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from datetime import UTC, datetime
from html import escape

from .archive import Archive
from .article import headline
from .language import direction

REPORT_VERSION = 1


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return re.sub(r"<metadata>.*?</metadata>", "", text[text.index("<svg"):], flags=re.S)


def _charts(sizes: Counter, per_day: Counter) -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 10, "axes.spines.top": False,
                         "axes.spines.right": False})
    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    xs = sorted(sizes)
    ax.bar([str(x) for x in xs], [sizes[x] for x in xs], color="#4c72b0")
    ax.set_xlabel("articles per story (1 = no copy found)")
    ax.set_ylabel("stories")
    ax.set_title("Story sizes")
    size_svg = _svg(fig)
    plt.close(fig)
    if not per_day:
        return size_svg, "<p class='note'>No article has a publication date, so there is no timeline.</p>"
    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    days = sorted(per_day)
    ax.bar([datetime.fromordinal(d) for d in days], [per_day[d] for d in days], width=0.9, color="#dd8452")  # type: ignore[arg-type]  # matplotlib takes dates
    ax.set_ylabel("new stories")
    ax.set_title("Stories over time (by first publication)")
    fig.autofmt_xdate()
    time_svg = _svg(fig)
    plt.close(fig)
    return size_svg, time_svg


def _td(text: object, lang: str | None = None, cls: str = "") -> str:
    value = "" if text is None else str(text)
    attrs = f' class="{cls}"' if cls else ""
    if lang:
        attrs += f' lang="{escape(lang)}" dir="{direction(lang)}"'
    else:
        attrs += ' dir="auto"'
    return f"<td{attrs}>{escape(value)}</td>"


def build_report(archive: Archive, max_groups: int = 500, title: str = "storycluster report") -> str:
    """The report as one HTML string."""
    result = archive.dedup()
    groups, singletons = result["groups"], result["singletons"]
    facts = {i: ts for _, i, ts, _ in archive.db.facts()}
    n_articles = len(facts)
    sizes = Counter(g["size"] for g in groups)
    if singletons:
        sizes[1] = len(singletons)
    per_day: Counter = Counter()
    firsts = [min((ts for m in g["members"] if (ts := facts.get(m["id"])) is not None), default=None)
              for g in groups] + [facts.get(s) for s in singletons]
    for ts in firsts:
        if ts is not None:
            per_day[datetime.fromtimestamp(ts, UTC).toordinal()] += 1
    size_svg, time_svg = _charts(sizes, per_day)

    reprints: Counter = Counter()  # (copying source, source of the representative)
    for g in groups:
        rep = g["members"][0]
        for m in g["members"][1:]:
            if m["source"] and rep["source"] and m["source"] != rep["source"]:
                reprints[(m["source"], rep["source"])] += 1
    sources = [s for s, _ in Counter(s for pair in reprints.elements() for s in pair).most_common(12)]
    top = max(reprints.values(), default=1)
    if sources:
        head = "".join(f'<th dir="auto">{escape(s)}</th>' for s in sources)
        rows = []
        for a in sources:
            cells = []
            for b in sources:
                n = reprints.get((a, b), 0)
                shade = int(255 - 180 * n / top)
                cells.append(f'<td class="num" style="background: rgb({shade},{shade},255)">{n or ""}</td>')
            rows.append(f'<tr><th dir="auto">{escape(a)}</th>{"".join(cells)}</tr>')
        matrix = (f'<table class="matrix"><tr><th>copies ↓ / first ran →</th>{head}</tr>{"".join(rows)}</table>'
                  "<p class='note'>Row source published a member of a story whose representative (the earliest "
                  "article; without dates, the text the others copy) comes from the column source.</p>")
    else:
        matrix = "<p class='note'>No story holds articles of two known sources.</p>"

    blocks = []
    for g in groups[:max_groups]:
        rep = g["members"][0]
        srcs = sorted({m["source"] for m in g["members"] if m["source"]})
        dates = sorted(m["published"] for m in g["members"] if m["published"])
        span = f"{dates[0]} – {dates[-1]}" if dates and dates[0] != dates[-1] else (dates[0] if dates else "no dates")
        members = "".join(
            "<tr>" + _td(m["id"], cls="id") + _td(headline(m["title"], None) or "(no headline)", m["lang"])
            + _td(m["source"]) + _td(m["published"]) + _td(m["lang"])
            + _td(m["tier"] + (f" of {m['duplicate_of']}" if m["duplicate_of"] else "")
                  + (" (via the group)" if m.get("via") == "group" else ""), cls="tier")
            + f'<td class="num">{m["score"]:.2f}</td></tr>'
            for m in g["members"])
        rep_lang = rep["lang"]
        blocks.append(
            f'<section class="group" id="{escape(g["group"])}" data-size="{g["size"]}">'
            f'<h3 lang="{escape(rep_lang or "und")}" dir="{direction(rep_lang) if rep_lang else "auto"}">'
            f'{escape(headline(rep["title"], None) or rep["id"])}</h3>'
            f'<p class="meta">{g["size"]} articles · {_count(len(srcs), "source")} · {escape(span)} · group '
            f'<code>{escape(g["group"])}</code></p>'
            f'<table class="members"><tr><th>id</th><th>headline</th><th>source</th><th>published</th><th>lang</th>'
            f'<th>tier</th><th>score</th></tr>{members}</table></section>')
    more = (f"<p class='note'>{len(groups) - max_groups} smaller groups are not listed (raise --max-groups).</p>"
            if len(groups) > max_groups else "")
    langs = Counter(m["lang"] for g in groups for m in g["members"])
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="storycluster report v{REPORT_VERSION}">
<title>{escape(title)}</title>
<style>
body {{ font: 14px/1.45 system-ui, 'Noto Sans', 'Noto Naskh Arabic', sans-serif; margin: 1.5rem auto; max-width: 70rem;
       padding: 0 1rem; color: #222; }}
h1 {{ font-size: 1.5rem; }} h2 {{ margin-top: 2rem; border-bottom: 1px solid #ddd; }}
h3 {{ font-size: 1.05rem; margin: 1.2rem 0 .2rem; }}
.summary td {{ padding: .1rem 1rem .1rem 0; }} .note, .meta {{ color: #666; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 1rem; }} .charts figure {{ margin: 0; }}
.charts svg {{ max-width: 100%; height: auto; }}
table.members, table.matrix {{ border-collapse: collapse; width: 100%; }}
table.members td, table.members th, table.matrix td, table.matrix th {{ border: 1px solid #e3e3e3; padding: .2rem .4rem;
  text-align: start; vertical-align: top; }}
td.num {{ text-align: end; font-variant-numeric: tabular-nums; }} td.id {{ font-family: monospace; font-size: .85em; }}
table.matrix {{ width: auto; }}
</style></head>
<body>
<h1>{escape(title)}</h1>
<table class="summary">
<tr><td>store</td><td><code>{escape(str(archive.path))}</code></td></tr>
<tr><td>articles</td><td>{n_articles}</td></tr>
<tr><td>stories</td><td>{len(groups) + len(singletons)} ({len(groups)} with copies, {len(singletons)} single)</td></tr>
<tr><td>articles in groups</td><td>{sum(g["size"] for g in groups)}</td></tr>
<tr><td>languages in groups</td><td>{escape(", ".join(f"{k or 'unknown'}: {v}" for k, v in langs.most_common()))}</td></tr>
<tr><td>model</td><td>{escape(archive.config.model_id)}</td></tr>
<tr><td>generated</td><td>{generated}</td></tr>
</table>
<h2>Charts</h2>
<div class="charts"><figure id="chart-sizes">{size_svg}</figure><figure id="chart-time">{time_svg}</figure></div>
<h2>Who reprints whom</h2>
{matrix}
<h2>Groups ({len(groups)})</h2>
{"".join(blocks)}
{more}
</body></html>
"""


def _count(n: int, noun: str) -> str:
    """A count with its noun: 1 source, 2 sources, no source."""
    return f"no {noun}" if n == 0 else f"{n} {noun}" if n == 1 else f"{n} {noun}s"
