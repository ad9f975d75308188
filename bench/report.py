"""The HTML report over the ECB+ store: build time, file size, and the time headless Chromium takes to load
and lay it out (from navigation start to the load event, and to the first screenshot).

Run: .venv/bin/python bench/report.py --store DIR   (an ECB+ store, e.g. from bench/serve_load.py --store)"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from storycluster import Archive
from storycluster.report import build_report

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with Archive(args.store, create=False) as a:
            html = build_report(a)
        build = time.perf_counter() - t0
        out = Path(tmp) / "report.html"
        out.write_text(html, encoding="utf-8")
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(str(Path(tmp) / "profile"), executable_path=shutil.which("chromium"),
                                                       headless=True, args=FLAGS)
            page = ctx.new_page()
            t1 = time.perf_counter()
            page.goto(out.as_uri(), wait_until="load")
            loaded = time.perf_counter() - t1
            nav = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
            groups = page.eval_on_selector_all("section.group", "els => els.length")
            page.screenshot(path=str(Path(tmp) / "shot.png"), full_page=True)
            shot = time.perf_counter() - t1
            ctx.close()
    print("| measure | value |\n| --- | --- |")
    print(f"| build (dedup + charts + HTML) | {build:.1f} s |")
    print(f"| size | {len(html.encode()) / 1e6:.2f} MB |")
    print(f"| Chromium load event | {nav:.0f} ms (goto returned after {loaded * 1000:.0f} ms) |")
    print(f"| to a full-page screenshot | {shot:.1f} s |")
    print(f"| groups listed | {groups} |")


if __name__ == "__main__":
    main()
