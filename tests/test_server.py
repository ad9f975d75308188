"""HTTP API contract: every endpoint and error, over a copy of the seed store with the real model."""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from storycluster import Archive
from storycluster.server import StoreBackend, create_app

from .conftest import SUDANI_HEADLINES

TOKEN = "s3cret"


@pytest.fixture(scope="module")
def client(seed_store, tmp_path_factory):
    path = tmp_path_factory.mktemp("api") / "store"
    shutil.copytree(seed_store, path)
    backend = StoreBackend(path, readers=2)
    with TestClient(create_app(backend, token=TOKEN, cors_origins=["https://news.example"], max_body_bytes=200_000)) as c:
        yield c
    backend.close()


def shown(item: dict) -> set[str]:
    return {item["id"], *(o["id"] for o in item["also_in"])}


def test_health_and_openapi(client):
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["articles"] == 25 and h["related_lists"] == "stored"
    spec = client.get("/openapi.json").json()
    for path in ("/articles/{article_id}/related", "/related", "/articles", "/groups", "/groups/{group_id}"):
        assert path in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_related_collapses_copies_with_also_in(client):
    r = client.get("/articles/seed-main/related", params={"k": 10})
    assert r.status_code == 200
    items = r.json()["related"]
    sudani = [i for i in items if shown(i) & set(SUDANI_HEADLINES)]
    assert len(sudani) == 1 and set(SUDANI_HEADLINES) <= shown(sudani[0])
    for i in items:
        assert {"id", "title", "url", "source", "published", "score", "tier", "also_in"} <= set(i)
        assert all(set(o) == {"id", "source", "url"} for o in i["also_in"])
    # Arabic comes back as text, not \\u escapes
    assert "\\u06" not in r.text and any("\u0600" <= c <= "\u06ff" for c in r.text)


def test_related_options_over_http(client):
    items = client.get("/articles/en-sudani-bloomberg/related",
                       params={"exclude_source": "exemple-presse.fr", "per_source": 1}).json()["related"]
    assert items and not any(x.startswith("fr-") for i in items for x in shown(i))
    sources = [i["source"] for i in items if i["source"]]
    assert len(sources) == len(set(sources))
    past = client.get("/articles/en-sudani-bloomberg/related", params={"past_only": "true"}).json()["related"]
    assert all(i["published"] <= "2024-09-10" for i in past)
    ex = client.get("/articles/seed-main/related", params=[("exclude", "similar-03,similar-04")]).json()["related"]
    assert not {"similar-03", "similar-04"} & {x for i in ex for x in shown(i)}


def test_post_related_for_unstored_text(client):
    r = client.post("/related", json={"title": "Iraq PM on US troops",
                                      "text": "Iraq's prime minister says American forces are no longer needed "
                                              "after the defeat of ISIS", "k": 3})
    assert r.status_code == 200
    body = r.json()
    assert body["query"] is None and 1 <= len(body["related"]) <= 3 and "note" not in body
    assert set(SUDANI_HEADLINES) & shown(body["related"][0])
    headline = client.post("/related", json={"text": "Sudani: US troops no longer needed", "k": 3}).json()
    assert headline["note"].startswith("the query has 6 words and is judged as a headline")


def test_errors_are_json(client):
    r = client.get("/articles/nope/related")
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]
    r = client.get("/articles/seed-main/related", params={"k": 101})
    assert r.status_code == 422 and "k" in r.json()["error"]["message"]
    r = client.get("/articles/seed-main/related", params={"since": "last week"})
    assert r.status_code == 422 and "ISO" in r.json()["error"]["message"]
    r = client.post("/related", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["status"] == 422
    r = client.post("/related", json={"title": "x"})
    assert r.status_code == 422 and "text" in r.json()["error"]["message"]
    r = client.post("/related", content=b"x" * 300_000, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["error"]["message"]
    assert client.get("/groups/no-such-group").status_code == 404


def test_groups(client):
    page = client.get("/groups", params={"limit": 2}).json()
    assert page["total"] >= 2 and len(page["groups"]) == 2
    first = page["groups"][0]
    assert first["size"] >= page["groups"][1]["size"]
    assert client.get("/groups", params={"offset": 1, "limit": 1}).json()["groups"][0] == page["groups"][1]
    one = client.get(f"/groups/{first['group']}").json()
    assert one["representative"] == first["representative"] and len(one["members"]) == first["size"]


def test_writes_need_the_token_and_work(client):
    doc = {"id": "en-sudani-copy", "title": "Iraq PM: US troops no longer needed, he tells Bloomberg",
           "text": "Iraq's prime minister Mohammed Shia al-Sudani said in an interview with Bloomberg that "
                   "the country no longer needs US-led coalition troops after the defeat of Islamic State. "
                   "He said talks on the coalition's exit would continue.", "source": "another-wire.example",
           "published": "2024-09-12", "lang": "en"}
    assert client.post("/articles", json=[doc]).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    bad = client.post("/articles", json=[doc, {"id": "x", "title": "t"}], headers=auth)
    assert bad.status_code == 422
    err = bad.json()["error"]
    assert err["where"] == "articles[1]" and err["field"] == "text"
    nul = client.post("/articles", json=[{"id": "x", "text": "a\u0000b"}], headers=auth).json()["error"]
    assert nul["field"] == "text" and "--on-error" not in nul["message"] + nul["hint"]
    assert nul["hint"] == "fix the record; nothing of this batch was stored"
    listed = client.post("/articles", json=[doc, ["x"]], headers=auth).json()["error"]
    assert listed["message"].startswith("articles[1]: expected an article: an object (dict) of its fields, got list")
    assert listed["hint"] == "send a list of article objects"
    assert client.get("/articles/en-sudani-copy/related").status_code == 404  # nothing of the bad batch stored
    clash = client.post("/articles", json=[doc, {**doc, "title": "Another headline"}], headers=auth)
    assert clash.status_code == 422  # one id, two records: which is the article?
    assert clash.json()["error"]["message"].startswith("articles[1]: field 'id': duplicate id 'en-sudani-copy' "
                                                       "(first at articles[0])")
    tag = client.get("/groups").headers["etag"]
    twice = [{**doc, "author": "A. Writer", "section": "world"}] * 2  # the same record twice: stored once
    ok = client.post("/articles", json=twice, headers=auth)
    assert ok.status_code == 200 and (ok.json()["added"], ok.json()["repeated"]) == (1, 1)
    [notice] = ok.json()["notices"]  # fields the API does not read are said, not dropped in silence
    assert notice.startswith("articles: fields not read: 'author' (2 records), 'section' (2 records)")
    assert client.get("/groups", headers={"If-None-Match": tag}).status_code == 200  # the data changed: new tag
    items = client.get("/articles/en-sudani-copy/related").json()["related"]
    assert "en-sudani-bloomberg" in shown(items[0])
    assert client.delete("/articles/en-sudani-copy").status_code == 401
    assert client.delete("/articles/en-sudani-copy", headers=auth).json() == {"removed": "en-sudani-copy"}
    assert client.delete("/articles/en-sudani-copy", headers=auth).status_code == 404
    assert client.get("/health").json()["articles"] == 25


def test_page_and_widget(client):
    page = client.get("/articles/seed-main")
    assert page.status_code == 200 and 'dir="rtl"' in page.text and 'lang="ar"' in page.text
    assert page.headers["content-type"].startswith("text/html") and 'src="../widget.js"' in page.text
    js = client.get("/widget.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "textContent" in js.text
    data = client.get("/articles/seed-main.json").json()
    assert data["id"] == "seed-main" and data["text"]


def test_cors_header_for_allowed_origin(client):
    r = client.get("/articles/seed-main/related", headers={"Origin": "https://news.example"})
    assert r.headers.get("access-control-allow-origin") == "https://news.example"
    r = client.get("/articles/seed-main/related", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_etag_revalidation(client):
    first = client.get("/articles/seed-main/related", params={"k": 3})
    tag = first.headers["etag"]
    assert first.headers["cache-control"].startswith("public")
    again = client.get("/articles/seed-main/related", params={"k": 3}, headers={"If-None-Match": tag})
    assert again.status_code == 304 and not again.content
    other = client.get("/articles/seed-main/related", params={"k": 4}, headers={"If-None-Match": tag})
    assert other.status_code == 200  # another URL, another tag


def test_a_huge_posted_text_is_read_only_as_far_as_a_query_needs(seed_store, tmp_path):
    """A 9 MB posted text answers as the same text cut to QUERY_MAX_CHARS does (nothing beyond is normalized,
    hashed or embedded); POSTs over the per-client limit get 429 with Retry-After."""
    from storycluster.queries import QUERY_MAX_CHARS

    path = tmp_path / "store"
    shutil.copytree(seed_store, path)
    backend = StoreBackend(path, readers=1)
    lead = "Iraq's prime minister says American forces are no longer needed after the defeat of ISIS. "
    huge = lead * (9_000_000 // len(lead))
    try:
        with TestClient(create_app(backend, post_per_minute=3)) as c:
            big = c.post("/related", json={"text": huge, "k": 5})
            cut = c.post("/related", json={"text": huge[:QUERY_MAX_CHARS], "k": 5})
            assert big.status_code == cut.status_code == 200 and big.json() == cut.json()
            assert c.post("/related", json={"text": lead, "k": 5}).status_code == 200
            limited = c.post("/related", json={"text": lead, "k": 5})
            assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
            assert limited.json()["error"]["status"] == 429
            assert c.get("/articles/seed-main/related").status_code == 200  # reads are not limited
    finally:
        backend.close()


def test_every_error_has_the_api_shape_and_no_server_path(client, seed_store):
    """Unknown routes, wrong methods, refused preflights and streamed bodies over the cap answer
    {"error": {"status", "message"}}; HEAD works on GET routes; no answer names the store's folder."""
    def shape(r, status):
        assert r.status_code == status and r.headers["content-type"].startswith("application/json"), r.text
        assert r.json()["error"]["status"] == status and r.json()["error"]["message"]
        return r.json()["error"]["message"]

    assert "/docs" in shape(client.get("/nope"), 404)
    shape(client.put("/health"), 405)
    shape(client.options("/related", headers={"Origin": "https://evil.example",
                                              "Access-Control-Request-Method": "POST"}), 400)
    chunks = iter([b'{"text": "' + b"x" * 150_000, b"y" * 150_000 + b'"}'])
    assert "limit" in shape(client.post("/related", content=chunks, headers={"Content-Type": "application/json"}), 413)
    head = client.head("/articles/seed-main/related")
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"]
    assert client.head("/health").status_code == 200
    where = str(client.app.state.backend.path)
    for r in (client.get("/articles/zzz/related"), client.get("/articles/zzz"), client.get("/health"),
              client.get("/groups/zzz"), client.delete("/articles/zzz", headers={"Authorization": f"Bearer {TOKEN}"})):
        assert where not in r.text and str(seed_store) not in r.text, r.text


def test_error_messages_stay_whole_for_a_store_with_a_short_folder_name(seed_store, tmp_path, monkeypatch):
    """The store's folder is taken out of answers only where a message names it: a store at ``s`` (as
    ``serve --store s`` gives it) leaves the "s" of other words and of ids alone."""
    shutil.copytree(seed_store, tmp_path / "s")
    monkeypatch.chdir(tmp_path)
    backend = StoreBackend("s")
    try:
        with TestClient(create_app(backend)) as c:
            for url, message in [("/articles/s/related", "no article with id 's'; list ids with 'storycluster dedup --all'"),
                                 ("/groups/ss", "no group with id 'ss'; list them with 'storycluster dedup'")]:
                r = c.get(url)
                assert (r.status_code, r.json()["error"]["message"]) == (404, message)
            r = c.get("/groups", params={"offset": 10 ** 20})  # past any integer: a request error, not a 500
            assert r.status_code == 422 and "offset" in r.json()["error"]["message"]
    finally:
        backend.close()


def test_any_stored_id_can_be_read_and_deleted_over_http(seed_store, tmp_path):
    """Ids with "/" (a folder import's), ending in ".json" or "/related", or with spaces and Arabic letters: each
    is read (JSON, page, related list) and deleted through its percent-encoded path; control characters and
    over-long ids are refused with the field named."""
    from urllib.parse import quote

    path = tmp_path / "store"
    shutil.copytree(seed_store, path)
    backend = StoreBackend(path, readers=1)
    ids = ["2024/09/story", "notes.json", "desk/related", "خبر عاجل 1"]
    docs = [{"id": i, "title": f"Storm Boris floods central Europe ({n})",
             "text": f"Storm Boris brought heavy rain to Poland and Czechia; report number {n}."}
            for n, i in enumerate(ids)]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with TestClient(create_app(backend, token=TOKEN)) as c:
            assert c.post("/articles", json=docs, headers=auth).status_code == 200
            for i in ids:
                enc = quote(i, safe="")
                assert c.get(f"/articles/{enc}.json").json()["id"] == i
                page = c.get(f"/articles/{enc}")
                assert page.status_code == 200 and "text/html" in page.headers["content-type"]
                assert f'data-article="{i}"' in page.text or i in page.text
                assert c.get(f"/articles/{enc}/related").json()["query"] == i
            # the raw forms: an id ending in .json or /related whose shorter form is no id shows its own page
            assert "text/html" in c.get("/articles/notes.json").headers["content-type"]
            assert "text/html" in c.get("/articles/desk/related").headers["content-type"]
            assert 'src="../../../widget.js"' in c.get("/articles/2024/09/story").text
            for i in ids:
                assert c.delete(f"/articles/{quote(i, safe='')}", headers=auth).json() == {"removed": i}
            for bad, field in (("a\x07b", "control character"), ("x" * 600, "512-character limit")):
                r = c.post("/articles", json=[{"id": bad, "text": "t"}], headers=auth)
                assert r.status_code == 422 and field in r.json()["error"]["message"]
    finally:
        backend.close()


def test_an_answer_past_the_time_limit_is_a_503(seed_store, tmp_path):
    """A computed answer (on a read thread) not ready within the limit is a 503 when the limit passes. (An answer
    from a stored list is a few reads made on the event loop: the limit cannot cut those short.)"""
    import time

    class Slow(StoreBackend):
        def related_listed(self, article_id, k, options):  # as when filters leave the stored list short
            return None

        def related(self, article_id, k, options):
            time.sleep(1.0)
            return super().related(article_id, k, options)

    path = tmp_path / "store"
    shutil.copytree(seed_store, path)
    backend = Slow(path, readers=1)
    backend.health()  # the reader ready (the model loaded) before the clock starts
    try:
        with TestClient(create_app(backend, request_seconds=0.2)) as c:
            t0 = time.perf_counter()
            r = c.get("/articles/seed-main/related")
            assert r.status_code == 503 and r.headers["Retry-After"] and "within 0.2 s" in r.json()["error"]["message"]
            assert time.perf_counter() - t0 < 0.9  # when the limit passes, not when the slow work ends
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            time.sleep(1.5)  # the slow work ends on its thread and gives its reader back
            assert c.get("/health").status_code == 200
    finally:
        time.sleep(1.0)  # the slow answer's thread ends before the store closes
        backend.close()


def test_reads_are_answered_while_a_long_write_runs(seed_store, tmp_path):
    """Reads run on their own thread (one by default) and writes on another: a read is answered while an add
    is still running, and the add's answer comes after it."""
    import threading
    import time

    class SlowWrites(StoreBackend):
        def add(self, rows):
            time.sleep(1.5)
            return super().add(rows)

    path = tmp_path / "store"
    shutil.copytree(seed_store, path)
    backend = SlowWrites(path)
    backend.health()  # the model loaded before the clock starts
    try:
        with TestClient(create_app(backend, token="t")) as c:
            article = c.get("/articles/seed-main.json").json()
            done: dict[str, float] = {}

            def write() -> None:
                r = c.post("/articles", json=[{**article, "text": "Changed. " + article["text"]}],
                           headers={"Authorization": "Bearer t"})
                assert r.status_code == 200
                done["write"] = time.perf_counter()

            t0 = time.perf_counter()
            writer = threading.Thread(target=write)
            writer.start()
            time.sleep(0.3)  # the add is running
            assert c.get("/articles/seed-main/related").status_code == 200
            assert c.get("/health").status_code == 200
            read_at = time.perf_counter()
            writer.join()
            assert read_at - t0 < 1.2 < done["write"] - t0
    finally:
        backend.close()


class Counting(StoreBackend):
    """A store backend that records the ``k`` of each answer it computes; ``unlisted``: the ``k`` values whose
    stored list is taken as not answering (as when filters leave it short)."""

    def __init__(self, path, unlisted=()):
        super().__init__(path)
        self.calls: list[int] = []
        self.unlisted = set(unlisted)

    def related(self, article_id, k, options):
        self.calls.append(k)
        return super().related(article_id, k, options)

    def related_listed(self, article_id, k, options):
        self.calls.append(k)
        return None if k in self.unlisted else super().related_listed(article_id, k, options)


def test_rendered_answers_are_reused_until_the_data_changes(seed_store, tmp_path):
    """A GET answer is kept by its ETag key: asked again, the same bytes come back without computing it; a
    write changes the generation, and the next answer is computed from the new data. ``cache_mb=0``: always
    computed."""
    path = tmp_path / "store"
    shutil.copytree(seed_store, path)
    backend = Counting(path)
    calls = backend.calls
    try:
        with TestClient(create_app(backend, token="t")) as c:
            first = c.get("/articles/seed-main/related?k=3")
            again = c.get("/articles/seed-main/related?k=3")
            assert first.status_code == again.status_code == 200 and calls == [3]
            assert again.content == first.content and again.headers["ETag"] == first.headers["ETag"]
            assert again.headers["content-type"] == first.headers["content-type"] == "application/json"
            assert again.headers["X-Content-Type-Options"] == "nosniff"
            c.get("/articles/seed-main/related?k=4")  # another query: another answer
            assert calls == [3, 4]
            assert c.get("/groups?limit=5").status_code == 200 and len(c.app.state.answers) == 3
            shown = first.json()["related"][0]
            stored = c.get(f"/articles/{shown['id']}.json").json()
            r = c.post("/articles", json=[{**stored, "title": "A new headline"}], headers={"Authorization": "Bearer t"})
            assert r.status_code == 200
            after = c.get("/articles/seed-main/related?k=3")
            assert len(calls) == 3 and after.headers["ETag"] != first.headers["ETag"]
            assert "A new headline" in {e["title"] for e in after.json()["related"]}
            # answers of the data's generation: a new one drops the older generation's (/groups?limit=5 here);
            # the answers from seed-main's list stay (k=3 replaced by its new version, k=4 at its old one)
            assert c.get("/groups").status_code == 200
            assert len(c.app.state.answers) == 3
        with TestClient(create_app(backend, cache_mb=0)) as c:
            c.get("/articles/seed-main/related?k=3")
            c.get("/articles/seed-main/related?k=3")
            assert len(calls) == 5
    finally:
        backend.close()


def test_an_answer_from_a_stored_list_keeps_its_tag_and_bytes_across_writes_that_leave_the_list(seed_store,
                                                                                                  tmp_path):
    """A related list's tag names the list's version, not the store's: an add that does not reach the list
    leaves the tag (a browser's If-None-Match still gets 304) and the kept answer (not computed again); an add
    that enters the list changes both. An answer the list cannot give (filters that leave it short; here k=7
    stands for one) is computed and tagged with the store's generation, which every add changes."""
    path = tmp_path / "store"
    shutil.copytree(seed_store, path)
    backend = Counting(path, unlisted={7})
    calls = backend.calls
    auth = {"Authorization": "Bearer t"}
    try:
        with TestClient(create_app(backend, token="t")) as c:
            first, deep = c.get("/articles/seed-main/related?k=5"), c.get("/articles/seed-main/related?k=7")
            assert first.status_code == deep.status_code == 200 and calls == [5, 7, 7]  # 7: the list, then computed
            far = {"id": "far-1", "title": "Slow-cooked lentil soup with cumin",
                   "text": "Rinse the lentils, soften an onion in olive oil, add cumin and simmer for forty minutes "
                           "with stock. Season with lemon juice and serve with flat bread. " * 3}
            assert c.post("/articles", json=[far], headers=auth).status_code == 200
            calls.clear()
            again = c.get("/articles/seed-main/related?k=5")
            assert again.headers["ETag"] == first.headers["ETag"] and again.content == first.content
            assert calls == []  # kept
            assert c.get("/articles/seed-main/related?k=5",
                         headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
            assert c.get("/articles/seed-main/related?k=7").headers["ETag"] != deep.headers["ETag"]
            # a report of the same story enters the list: a new version, a new answer
            main = c.get("/articles/seed-main.json").json()
            near = {"id": "near-1", "title": main["title"], "text": main["text"] + "\nUpdated with reactions.",
                    "source": "another-outlet.example"}
            assert c.post("/articles", json=[near], headers=auth).status_code == 200
            after = c.get("/articles/seed-main/related?k=5")
            assert after.headers["ETag"] != first.headers["ETag"]
            assert "near-1" in {x for e in after.json()["related"]
                                 for x in (e["id"], *(m["id"] for m in e.get("also_in", [])))}
    finally:
        backend.close()


def test_an_answer_that_ages_with_the_clock_is_not_kept_past_its_minute(seed_store, tmp_path, monkeypatch):
    """``max_age_days`` counts back from now: its answer is neither tagged by the stored list's version nor kept
    across minutes, even when nothing is written."""
    import storycluster.server.app as app_module

    path = tmp_path / "store"
    shutil.copytree(seed_store, path)
    backend = Counting(path)
    minute = [1_000_000.0]
    monkeypatch.setattr(app_module.time, "time", lambda: minute[0])
    try:
        with TestClient(create_app(backend)) as c:
            url = "/articles/seed-main/related?k=5&max_age_days=100000"
            first, again = c.get(url), c.get(url)
            assert first.status_code == 200 and again.headers["ETag"] == first.headers["ETag"]
            assert backend.calls == [5]  # computed (not from the list), then kept within the minute
            minute[0] += 60
            later = c.get(url)
            assert later.headers["ETag"] != first.headers["ETag"] and backend.calls == [5, 5]
    finally:
        backend.close()


class Watched(StoreBackend):
    """A store backend that records, per request, whether the event loop answered from the stored list
    (``inline=False``: it never may, every answer goes to a read thread)."""

    def __init__(self, path, inline=True):
        super().__init__(path)
        self.inline, self.ready = inline, []

    @contextmanager
    def quick_snapshot(self):
        if not self.inline:
            self.ready.append(False)
            yield False
            return
        with super().quick_snapshot() as ready:
            self.ready.append(ready)
            yield ready


def test_answers_from_stored_lists_on_the_event_loop_equal_those_of_a_read_thread(seed_store, tmp_path):
    """An answer from a stored list is made on the event loop when a reader is free at once and the store needs no
    repair; otherwise on a read thread: the same bytes and tags either way, with and without filters. A store left
    by a write that stopped before its regrouping is repaired first, on a thread, and then answered on the loop."""
    path = tmp_path / "store"
    shutil.copytree(seed_store, path)
    queries = ["/articles/seed-main/related?k=5", "/articles/seed-main/related?k=10&per_source=1",
               "/articles/en-sudani-bloomberg/related?k=3&exclude_source=alsumaria.tv",
               "/articles/similar-04/related?k=8&lang=ar", "/articles/seed-main/related?k=50"]
    answers = {}
    for inline in (True, False):
        backend = Watched(path, inline=inline)
        try:
            with TestClient(create_app(backend, cache_mb=0)) as c:
                answers[inline] = [(r.status_code, r.headers["ETag"], r.content) for r in map(c.get, queries)]
                for q in queries[:2]:  # the If-None-Match answer on the loop too
                    assert c.get(q, headers={"If-None-Match": c.get(q).headers["ETag"]}).status_code == 304
        finally:
            backend.close()
        assert backend.ready[:len(queries)] == [inline] * len(queries)
    assert answers[True] == answers[False] and all(s == 200 for s, *_ in answers[True])
    assert b'"related":[{' in answers[True][0][2]
    for *_, body in answers[True]:  # orjson's bytes are those of the standard library's encoder, as Starlette uses it
        assert body == json.dumps(json.loads(body), ensure_ascii=False, separators=(",", ":")).encode()

    with Archive(path, create=False) as a, a.db.transaction():
        a.db.set_meta("groups_generation", "0")  # as if a write had stopped before its regrouping
    backend = Watched(path)
    try:
        with TestClient(create_app(backend, cache_mb=0)) as c:
            repaired = [c.get(q) for q in queries[:2]]
        assert backend.ready[:2] == [False, True]  # the first repairs on a thread; the second on the loop
        assert [r.content for r in repaired] == [content for *_, content in answers[True][:2]]
    finally:
        backend.close()


def test_a_list_answer_waits_for_a_busy_read_thread(seed_store, tmp_path):
    """While a read thread computes an answer, an answer from a stored list is not made on the event loop (it
    would take the GIL from the thread's turns) but queues behind it on a read thread: the same answer, later."""
    import threading
    import time

    class Busy(Watched):
        started = threading.Event()
        finished: list[float] = []

        def related_listed(self, article_id, k, options):  # k=7: as when filters leave the list short
            return None if k == 7 else super().related_listed(article_id, k, options)

        def related(self, article_id, k, options):
            self.started.set()
            time.sleep(1.0)
            try:
                return super().related(article_id, k, options)
            finally:
                self.finished.append(time.monotonic())

    path = tmp_path / "store"
    shutil.copytree(seed_store, path)
    backend = Busy(path)
    try:
        with TestClient(create_app(backend, cache_mb=0)) as c:
            alone = c.get("/articles/seed-main/related?k=5")
            computing = threading.Thread(target=c.get, args=("/articles/seed-main/related?k=7",))
            computing.start()
            assert backend.started.wait(30)  # the k=7 answer is being computed on the read thread
            during = c.get("/articles/seed-main/related?k=5")
            answered = time.monotonic()
            computing.join()
        assert alone.status_code == during.status_code == 200 and during.content == alone.content
        assert answered >= backend.finished[0]  # answered after the computed one, on the same thread
        assert backend.ready == [True, True]  # k=5 alone and k=7 on the loop; k=5 during the computation not
    finally:
        backend.close()
