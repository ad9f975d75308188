"""The server for real: `storycluster serve` as a subprocess on loopback, reads during a concurrent add,
and the article page rendered by headless Chromium (screenshot saved under test-artifacts/)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from .conftest import ARTIFACTS, SUDANI_HEADLINES, needs_chromium, write_jsonl


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(path, *args: str):
    """`storycluster serve` on a free loopback port (SC_TOKEN=t0k in its environment), until the block ends."""
    port = free_port()
    env = {**os.environ, "SC_TOKEN": "t0k"}
    proc = subprocess.Popen([sys.executable, "-m", "storycluster.cli", "serve", "--store", str(path), "--port", str(port),
                             *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"server did not start: {proc.stderr.read().decode()}")
        time.sleep(0.2)
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def read_while(adder: subprocess.Popen, read, readers: int, timeout: int) -> None:
    """Run ``read`` (which loops while ``adder`` runs) on ``readers`` threads; the adder must succeed."""
    threads = [threading.Thread(target=read) for _ in range(readers)]
    for t in threads:
        t.start()
    assert adder.wait(timeout=timeout) == 0, adder.stderr.read().decode()
    for t in threads:
        t.join()


@pytest.fixture(scope="module")
def server(seed_store, tmp_path_factory):
    path = tmp_path_factory.mktemp("live") / "store"
    shutil.copytree(seed_store, path)
    with serving(path, "--token-env", "SC_TOKEN") as base:
        yield base, path


def test_real_server_answers_on_loopback(server):
    base, _ = server
    r = httpx.get(f"{base}/articles/seed-main/related", params={"k": 5})
    assert r.status_code == 200
    items = r.json()["related"]
    assert sum(1 for i in items if {i["id"], *(o["id"] for o in i["also_in"])} & set(SUDANI_HEADLINES)) == 1
    assert httpx.get(f"{base}/articles/missing/related").status_code == 404


def test_reads_stay_consistent_during_an_add(server, tmp_path):
    """Another process adds 60 articles while this one keeps reading: every read is a whole answer."""
    base, path = server
    rows = [{"id": f"extra-{n}", "title": f"Storm Boris update {n}: rivers rise in central Europe",
             "text": f"Update {n}. Storm Boris brought more rain to Poland, Czechia and Austria; rivers rose and "
                     f"towns were evacuated. Officials counted damage in district {n}.", "source": f"wire{n % 7}.example",
             "published": "2024-09-16", "lang": "en"} for n in range(60)]
    src = write_jsonl(tmp_path / "extra.jsonl", rows)
    adder = subprocess.Popen([sys.executable, "-m", "storycluster.cli", "add", str(src), "--store", str(path)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    answers, errors = [], []

    def read() -> None:
        with httpx.Client(base_url=base, timeout=30) as c:
            while adder.poll() is None:
                for q in ("seed-main", "en-storm-boris"):
                    r = c.get(f"/articles/{q}/related", params={"k": 10})
                    (answers if r.status_code == 200 else errors).append(r)
    read_while(adder, read, readers=3, timeout=300)
    assert not errors, [e.text for e in errors[:3]]
    assert answers
    for r in answers:
        ids = [x for i in r.json()["related"] for x in (i["id"], *(o["id"] for o in i["also_in"]))]
        assert len(ids) == len(set(ids))  # never an article twice: groups and articles from one snapshot
    after = httpx.get(f"{base}/articles/en-storm-boris/related", params={"k": 10}).json()["related"]
    assert any(x.startswith("extra-") for i in after for x in (i["id"], *(o["id"] for o in i["also_in"])))


@needs_chromium
def test_article_page_in_headless_chromium(server, browser_page):
    base, _ = server
    page = browser_page
    page.goto(f"{base}/articles/seed-main?k=8")
    page.wait_for_selector("#related[data-state=ready]", timeout=30_000)
    items = page.eval_on_selector_all(
        "li.storycluster-item",
        "els => els.map(e => ({id: e.dataset.id, text: e.innerText,"
        " dir: getComputedStyle(e.querySelector('.storycluster-title')).direction,"
        " also: e.querySelector('.storycluster-also summary') ? e.querySelector('.storycluster-also summary').innerText"
        " : '', others: e.querySelectorAll('.storycluster-also li').length}))")
    page_dir = page.evaluate("getComputedStyle(document.querySelector('article')).direction")
    heading = page.inner_text("article h1")
    page.screenshot(path=str(ARTIFACTS / "article-page-seed-main.png"), full_page=True)
    api = json.loads(page.evaluate("fetch('/articles/seed-main/related?k=8').then(r => r.text())"))
    assert len(items) == len(api["related"]) >= 3
    assert page_dir == "rtl" and re.search("[\u0600-\u06ff]{3}", heading)  # the Arabic headline, right to left
    sudani = [(i, a) for i, a in zip(items, api["related"], strict=True)
              if {a["id"], *(o["id"] for o in a["also_in"])} & set(SUDANI_HEADLINES)]
    assert len(sudani) == 1  # the four reprinted headlines (and the reports that join them) are one item
    n = len(sudani[0][1]["also_in"])
    # the page is Arabic: the widget's labels follow its language
    assert n >= 3 and sudani[0][0]["also"] in (f"+{n} نسخ أخرى", f"أيضًا في {n} وسائل إعلام"), sudani[0][0]
    assert sudani[0][0]["others"] == n
    arabic = [i for i, a in zip(items, api["related"], strict=True) if a["lang"] == "ar"]
    assert arabic and all(i["dir"] == "rtl" for i in arabic)
    assert (ARTIFACTS / "article-page-seed-main.png").stat().st_size > 10_000


PAYLOADS = ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "  \tjavascript:alert(1)", "vbscript:msgbox(1)",
            "data:text/html,<script>alert(1)</script>", "java\nscript:alert(1)", "//evil.example/x"]


def test_unsafe_urls_are_refused_at_the_door_and_never_become_links(server, browser_page, tmp_path):
    """Each payload is a bad-input problem over the API; planted in the database anyway (a store written by an
    older version), the widget renders no link to it, and clicking the entry runs nothing."""
    import sqlite3

    base, path = server
    headers = {"Authorization": "Bearer t0k"}
    for n, url in enumerate(PAYLOADS):
        r = httpx.post(f"{base}/articles", json=[{"id": f"x{n}", "text": "A text.", "url": url}], headers=headers)
        assert r.status_code == 422 and "http(s)" in r.json()["error"]["message"], (url, r.text)
    api = httpx.get(f"{base}/articles/seed-main/related", params={"k": 8}).json()["related"]
    shown = [i["id"] for i in api]
    conn = sqlite3.connect(path / "store.sqlite")
    try:
        with conn:
            for article_id, url in zip(shown, PAYLOADS, strict=False):
                conn.execute("UPDATE articles SET url = ? WHERE id = ?", (url, article_id))
        page = browser_page
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{base}/articles/seed-main?k=8")
        page.wait_for_selector("#related[data-state=ready]", timeout=30_000)
        hrefs = page.eval_on_selector_all("a.storycluster-title", "els => els.map(e => e.href)")
        assert hrefs and all(h.startswith(base + "/articles/") for h in hrefs[:len(PAYLOADS)]), hrefs
        for n in range(min(len(PAYLOADS), len(hrefs))):
            page.goto(f"{base}/articles/seed-main?k=8")
            page.wait_for_selector("#related[data-state=ready]", timeout=30_000)
            page.locator("a.storycluster-title").nth(n).click()
            page.wait_for_load_state()
        assert dialogs == []
    finally:
        with conn:
            for article_id in shown:
                conn.execute("UPDATE articles SET url = NULL WHERE id = ?", (article_id,))
        conn.close()


def auth_only() -> dict:
    return {"Authorization": "Bearer t0k"}


def test_writes_need_a_token_and_requests_are_checked(server, seed_store_copy):
    """Without a token the server is read-only; with one, writes need it (scheme in any case, never bare) and a
    401 says how to authenticate; a POST that is not JSON (what a cross-origin no-cors form or fetch can send) is
    refused before any work; a Host other than the server's names gets 421; answers carry security headers and
    pages a content security policy; /docs needs no network."""
    base, _ = server
    doc = [{"id": "w1", "title": "A title", "text": "Some text about a storm over the Baltic sea."}]
    r = httpx.post(f"{base}/articles", json=doc)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert httpx.post(f"{base}/articles", json=doc, headers={"Authorization": "t0k"}).status_code == 401
    assert httpx.post(f"{base}/articles", json=doc, headers={"Authorization": "bearer t0k"}).status_code == 200
    assert httpx.delete(f"{base}/articles/w1", headers={"Authorization": "BEARER t0k"}).status_code == 200
    plain = httpx.post(f"{base}/articles", content=json.dumps(doc), headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415 and plain.json()["error"]["status"] == 415
    assert httpx.post(f"{base}/articles", content=json.dumps(doc), headers={"Authorization": "Bearer t0k",
                                                                           "Content-Type": ""}).status_code == 415
    bare = httpx.Request("POST", f"{base}/articles", content=json.dumps(doc).encode(), headers=auth_only())
    assert "content-type" not in bare.headers  # what a no-cors fetch from another page may send
    assert httpx.Client().send(bare).status_code == 415
    assert httpx.get(f"{base}/health", headers={"Host": "rebound.example"}).status_code == 421
    assert httpx.get(f"{base}/health", headers={"Host": "localhost:1"}).status_code == 200
    page = httpx.get(f"{base}/articles/seed-main")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    docs = httpx.get(f"{base}/docs")
    assert docs.status_code == 200 and "/articles/{article_id}/related" in docs.text
    assert "<script" not in docs.text and "cdn" not in docs.text.lower()
    with serving(seed_store_copy) as ro:
        r = httpx.post(f"{ro}/articles", json=doc)
        assert r.status_code == 403 and "read-only" in r.json()["error"]["message"]
    refused = subprocess.run([sys.executable, "-m", "storycluster.cli", "serve", "--store", str(seed_store_copy),
                              "--host", "0.0.0.0", "--allow-anonymous-writes"], capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode == 2 and "loopback server only" in refused.stderr


def test_an_add_is_seen_whole_and_already_grouped(server, tmp_path, seed_rows):
    """Another process adds 300 articles (more than one 256-record chunk), 20 of them near-copies of one story,
    while readers poll: the article count is the one before or the one after, never between, and the copies
    are never separate entries of a related list (they are seen only once grouped)."""
    base, path = server
    boris = next(r for r in seed_rows if r["id"] == "en-storm-boris")
    copies = [{**boris, "id": f"copy-{n}", "source": f"copier{n}.example",
               "text": boris["text"] + f"\nReported by desk {'abcdefghijklmnopqrst'[n]}."} for n in range(20)]
    filler = [{"id": f"fill-{n}", "title": s.get("title") or "", "lang": s.get("lang"), "source": f"outlet{n % 9}.example",
               "text": " ".join(s["text"].split()[(n % 5) * 7:][:80]) + f" (ref {'abcdefghij'[n % 10]}{n // 10})"}
              for n, s in enumerate(seed_rows[i % len(seed_rows)] for i in range(280))]
    src = write_jsonl(tmp_path / "batch.jsonl", copies + filler)
    before = httpx.get(f"{base}/health").json()["articles"]
    adder = subprocess.Popen([sys.executable, "-m", "storycluster.cli", "add", str(src), "--store", str(path),
                              "--on-error", "skip"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    counts, lists, errors = [], [], []

    def read() -> None:
        with httpx.Client(base_url=base, timeout=30) as c:
            while adder.poll() is None:
                h = c.get("/health")
                r = c.get("/articles/en-storm-boris/related", params={"k": 10})
                for resp in (h, r):
                    if resp.status_code != 200:
                        errors.append(resp)
                if h.status_code == 200:
                    counts.append(h.json()["articles"])
                if r.status_code == 200:
                    lists.append(r.json()["related"])
    read_while(adder, read, readers=2, timeout=600)
    after = httpx.get(f"{base}/health").json()["articles"]
    assert not errors, [e.text for e in errors[:3]]
    assert after > before and set(counts) <= {before, after}, sorted(set(counts))
    assert len(counts) > 3
    for related in lists:
        entries_with_copies = [e for e in related if any(x.startswith("copy-") for x in
                                                         (e["id"], *(o["id"] for o in e["also_in"])))]
        assert len(entries_with_copies) <= 1, [e["id"] for e in entries_with_copies]


@needs_chromium
def test_widget_on_a_left_to_right_and_a_right_to_left_page(server, browser_page):
    """The widget's default stylesheet, labels and dates in the page's language, a live region that says when it
    is busy, the other outlets opened with the keyboard, every filter as a data- attribute; screenshots of an
    English (LTR) and an Arabic (RTL) host page are saved under test-artifacts/."""
    base, _ = server
    page = browser_page
    seen = {}
    for lang, direction, article in (("en", "ltr", "seed-main"), ("ar", "rtl", "seed-main")):
        html = (f'<!doctype html><html lang="{lang}" dir="{direction}"><head><meta charset="utf-8"></head><body>'
                f'<h1>{"Related" if lang == "en" else "مقالات ذات صلة"}</h1><div id="box"></div>'
                f'<script src="{base}/widget.js" data-article="{article}" data-k="6" data-target="box" '
                'data-exclude-source="nowhere.example" data-past-only="false"></script></body></html>')
        def serve_host(body: str):
            return lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8", body=body)

        page.route(f"{base}/host-{lang}.html", serve_host(html))
        requests = []
        page.on("request", lambda r, requests=requests: requests.append(r.url))
        page.goto(f"{base}/host-{lang}.html")
        page.wait_for_selector("#box[data-state=ready]", timeout=30_000)
        box = page.locator("#box")
        assert box.get_attribute("aria-live") == "polite" and box.get_attribute("aria-busy") == "false"
        assert page.evaluate("!!document.getElementById('storycluster-style')")
        summary = page.locator("details.storycluster-also summary").first
        summary.focus()
        page.keyboard.press("Enter")
        assert page.locator("details.storycluster-also").first.get_attribute("open") is not None
        assert page.locator("details.storycluster-also li a").first.is_visible()
        seen[lang] = {"summary": summary.inner_text(), "date": page.locator("time.storycluster-date").first.inner_text(),
                      "margin": page.evaluate("getComputedStyle(document.querySelector('.storycluster-item'))"
                                              ".marginBottom")}
        assert any("exclude_source=nowhere.example" in u and "past_only=false" in u for u in requests), requests
        page.screenshot(path=str(ARTIFACTS / f"widget-{lang}-{direction}.png"), full_page=True)
    assert seen["en"]["summary"].startswith(("also in", "+")) and seen["ar"]["summary"] != seen["en"]["summary"]
    assert seen["en"]["date"] != seen["ar"]["date"]  # formatted for each page's locale
    assert seen["en"]["margin"] != "0px"  # the default stylesheet applies
    for lang in ("en", "ar"):
        assert (ARTIFACTS / f"widget-{lang}-{'ltr' if lang == 'en' else 'rtl'}.png").stat().st_size > 5_000


def test_limits_error_shapes_and_ids_over_real_http(server):
    """Over uvicorn on loopback: a streamed body over the cap is a 413 in the API's shape, unknown routes and HEAD
    behave, an id holding "/" is added, read through its encoded path and deleted, and a 9 MB posted text
    answers as its first 20,000 characters do."""
    from urllib.parse import quote

    from storycluster.queries import QUERY_MAX_CHARS

    base, _ = server
    auth = {"Authorization": "Bearer t0k"}

    def stream():
        yield b'{"text": "'
        for _ in range(12):
            yield b"x" * 1_000_000
        yield b'"}'

    r = httpx.post(f"{base}/related", content=stream(), headers={"Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 413 and r.json()["error"]["status"] == 413
    assert httpx.get(f"{base}/no/such/route").json()["error"]["status"] == 404
    head = httpx.head(f"{base}/articles/seed-main/related")
    assert head.status_code == 200 and head.content == b""
    doc = {"id": "2024/09/live story", "title": "Storm Boris: rivers rise", "text": "Storm Boris floods towns."}
    assert httpx.post(f"{base}/articles", json=[doc], headers=auth).status_code == 200
    enc = quote(doc["id"], safe="")
    assert httpx.get(f"{base}/articles/{enc}.json").json()["id"] == doc["id"]
    assert httpx.get(f"{base}/articles/{enc}/related").json()["query"] == doc["id"]
    assert httpx.delete(f"{base}/articles/{enc}", headers=auth).json() == {"removed": doc["id"]}
    lead = "Iraq's prime minister says American forces are no longer needed after the defeat of ISIS. "
    huge = lead * (9_000_000 // len(lead))
    big = httpx.post(f"{base}/related", json={"text": huge, "k": 5}, timeout=120)
    cut = httpx.post(f"{base}/related", json={"text": huge[:QUERY_MAX_CHARS], "k": 5}, timeout=60)
    assert big.status_code == cut.status_code == 200 and big.json() == cut.json()
