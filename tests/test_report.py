"""The HTML report: built from the seed store with the real model, opened from disk in headless Chromium
(no network), groups and charts render, Arabic runs right to left; a screenshot is kept."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from storycluster import Archive
from storycluster.cli import app
from storycluster.report import build_report

from .conftest import ARTIFACTS, SUDANI_HEADLINES, needs_chromium


def test_report_content(seed_store):
    with Archive(seed_store) as a:
        html = build_report(a)
        groups = a.dedup()["groups"]
    assert html.count('<section class="group"') == len(groups)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html) and "<link" not in html  # nothing to fetch
    assert html.count("<svg") == 2  # sizes and timeline (seed articles have dates)
    for sid in SUDANI_HEADLINES:
        assert f">{sid}<" in html
    assert 'lang="ar" dir="rtl"' in html
    assert "السوداني" in html  # Arabic as text, not escapes
    # who reprints whom: the French outlet's two stories first ran on the wire (its representative), and the note
    # states the representative rule the README gives
    def row(source: str) -> list[str]:
        found = re.search(rf'<tr><th dir="auto">{re.escape(source)}</th>(.*?)</tr>', html)
        assert found, source
        return re.findall(r"<td[^>]*>(\d*)</td>", found.group(1))

    assert sorted(row("exemple-presse.fr")) == ["", "2"] and row("example-wire.com") == ["", ""]
    assert "the earliest article; without dates, the text the others copy" in html
    assert "7 articles · 2 sources · 2024-09-10 – 2024-09-11" in html and "1 source ·" in html and "1 sources" not in html


def test_report_cli_limits_groups(seed_store, tmp_path):
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", "--out", str(out), "--max-groups", "1", "--store", str(seed_store)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert html.count('<section class="group"') == 1 and "smaller groups are not listed" in html
    assert re.search(r"wrote .*r\.html", result.stderr)
    piped = CliRunner().invoke(app, ["report", "-o", "-", "--max-groups", "1", "--store", str(seed_store)])
    assert piped.stdout.startswith("<!doctype html>") and piped.stdout.count('<section class="group"') == 1
    assert piped.stderr.startswith("wrote standard output")


@needs_chromium
def test_report_renders_in_chromium(seed_store, tmp_path, browser_page):
    out = tmp_path / "report.html"
    with Archive(seed_store) as a:
        out.write_text(build_report(a), encoding="utf-8")
        n_groups = len(a.dedup()["groups"])
    page = browser_page
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url))
    page.goto(out.as_uri())
    shown = page.eval_on_selector_all("section.group", "els => els.filter(e => e.offsetHeight > 0).length")
    charts = page.eval_on_selector_all(".charts svg", "els => els.map(e => e.getBoundingClientRect().width)")
    bars = page.eval_on_selector_all("#chart-sizes svg path, #chart-sizes svg rect", "els => els.length")
    rtl = page.eval_on_selector_all("section.group h3[lang=ar], td[lang=ar]",
                                    "els => els.map(e => getComputedStyle(e).direction)")
    page.screenshot(path=str(ARTIFACTS / "report-seeds.png"), full_page=True)
    assert fetched == [out.as_uri()]  # the file opens without any other request
    assert shown == n_groups >= 3
    assert len(charts) == 2 and all(w > 200 for w in charts) and bars > 3
    assert rtl and set(rtl) == {"rtl"}
