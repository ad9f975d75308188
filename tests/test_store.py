"""Store round trip, incremental adds, changed text, removal, recovery from a stale index, no pickle."""

import json
import sqlite3

import numpy as np
import pytest

from storycluster import Archive, Article
from storycluster.boilerplate import affix_key, line_key, strip_title_affixes, title_affix_keys
from storycluster.errors import InputError, NotFoundError, StoreError
from storycluster.featurize import prepare_article
from storycluster.store.database import DERIVATION
from storycluster.store.store import Store

from .conftest import HashEmbedder, write_jsonl

ROWS = [
    {"id": "a", "title": "Flood in Valencia", "text": "Heavy rain flooded the city of Valencia on Tuesday, "
     "killing dozens and cutting roads across the region.", "source": "s1", "published": "2024-10-30"},
    {"id": "b", "title": "Flood in Valencia", "text": "Heavy rain flooded the city of Valencia on Tuesday, "
     "killing dozens and cutting roads across the region!", "source": "s2", "published": "2024-10-29"},
    {"id": "c", "title": "Chess final", "text": "The world chess championship final ended in a draw after "
     "seventy moves in Singapore.", "source": "s1"},
]


def test_round_trip_reopen_gives_same_results(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", ROWS)
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        archive.add_paths([src])
        before = (archive.dedup(), archive.related("a", k=5), archive.stats()["articles"])
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        after = (archive.dedup(), archive.related("a", k=5), archive.stats()["articles"])
    assert before == after
    dedup = before[0]
    assert [m["id"] for m in dedup["groups"][0]["members"]] == ["b", "a"]  # earliest published represents
    assert dedup["groups"][0]["members"][1]["tier"] == "duplicate"
    assert dedup["singletons"] == ["c"]


def test_readding_unchanged_input_embeds_nothing(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", ROWS)
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        archive.add_paths([src])
    emb = HashEmbedder()
    with Archive(tmp_path / "s", embedder=emb) as archive:
        gen = archive.db.generation
        report = archive.add_paths([src])
        assert archive.db.generation == gen
    assert (report.unchanged, report.added, report.updated, report.embedded) == (3, 0, 0, 0)
    assert emb.batches == []


def test_changed_text_is_reembedded_and_regrouped(tmp_path):
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        archive.add_paths([write_jsonl(tmp_path / "a.jsonl", ROWS)])
        assert archive.dedup()["singletons"] == ["c"]
    emb = HashEmbedder()
    changed = [dict(ROWS[1], text="Councillors approved extra money for public libraries, museums, parks.",
                    title="Budget vote")]
    with Archive(tmp_path / "s", embedder=emb) as archive:
        report = archive.add_paths([write_jsonl(tmp_path / "b.jsonl", changed)])
        assert report.updated == 1 and report.embedded == 2  # lead and headline views
        assert emb.batches and any("budget" in t.lower() for t in emb.batches[0])
        result = archive.dedup()
        assert result["groups"] == [] and result["singletons"] == ["a", "b", "c"]
        assert archive.db.article("b").title == "Budget vote"


def test_same_content_elsewhere_reuses_cached_embedding(tmp_path):
    emb = HashEmbedder()
    with Archive(tmp_path / "s", embedder=emb) as archive:
        archive.add_paths([write_jsonl(tmp_path / "a.jsonl", ROWS[:1])])
        n = emb.n_embedded
        archive.add_paths([write_jsonl(tmp_path / "b.jsonl", [dict(ROWS[0], id="copy", source="other")])])
        assert emb.n_embedded == n


def test_remove(tmp_path):
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        archive.add_paths([write_jsonl(tmp_path / "a.jsonl", ROWS)])
        removed, missing = archive.remove(["b", "zzz"])
        assert (removed, missing) == (["b"], ["zzz"])
        assert len(archive.index) == 2
        assert archive.dedup() == {"groups": [], "singletons": ["a", "c"]}
        with pytest.raises(NotFoundError):
            archive.related("b")
        assert all(r["id"] != "b" for r in archive.related("a")["related"])


def test_stale_or_missing_index_is_rebuilt_from_the_database(tmp_path):
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        archive.add_paths([write_jsonl(tmp_path / "a.jsonl", ROWS)])
        expected = archive.related("a")
    (tmp_path / "s" / "index.faiss").unlink()  # as if the process died before writing it
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        assert archive.related("a") == expected
        assert len(archive.index) == 3


def test_index_from_an_older_generation_is_not_trusted(tmp_path):
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        archive.add_paths([write_jsonl(tmp_path / "a.jsonl", ROWS[:2])])
    old_index = (tmp_path / "s" / "index.faiss").read_bytes()
    old_config = (tmp_path / "s" / "config.json").read_text()
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        archive.add_paths([write_jsonl(tmp_path / "b.jsonl", ROWS[2:])])
    # simulate a crash after the database commit but before the new index landed
    (tmp_path / "s" / "index.faiss").write_bytes(old_index)
    (tmp_path / "s" / "config.json").write_text(old_config)
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        assert len(archive.index) == 3
        assert any(r["id"] == "c" for r in archive.related("a", k=5)["related"]) or archive.related("c")["query"]


def test_store_files_are_open_formats(tmp_path):
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        archive.add_paths([write_jsonl(tmp_path / "a.jsonl", ROWS)])
    files = sorted(p.name for p in (tmp_path / "s").iterdir() if not p.name.startswith("."))
    assert {"config.json", "store.sqlite", "index.faiss"} <= set(files)
    config = json.loads((tmp_path / "s" / "config.json").read_text())
    assert config["format_version"] == 1 and config["model_id"] == "test-hash-64" and config["metric"] == "inner_product"
    for f in (tmp_path / "s").iterdir():
        assert b"\x80\x04\x95" not in f.read_bytes()[:64], f"{f} looks like a pickle"
    con = sqlite3.connect(tmp_path / "s" / "store.sqlite")
    vec = con.execute("SELECT vector FROM embeddings LIMIT 1").fetchone()[0]
    assert len(np.frombuffer(vec, dtype=np.float32)) == 64


def test_wrong_model_or_format_is_refused(tmp_path):
    with Archive(tmp_path / "s", embedder=HashEmbedder()):
        pass
    with pytest.raises(StoreError, match="built with model 'test-hash-64'"):
        Archive(tmp_path / "s", model="some-other-model")
    cfg = tmp_path / "s" / "config.json"
    cfg.write_text(cfg.read_text().replace('"format_version": 1', '"format_version": 99'))
    with pytest.raises(StoreError, match="format version 99"):
        Archive(tmp_path / "s")
    with pytest.raises(StoreError, match="no store here"):
        Archive(tmp_path / "nothing", create=False)


def test_boilerplate_lines_of_a_source_are_found_and_ignored(tmp_path):
    footer = "\n".join(["Agency desk – follow-up – wires",
                        "The views expressed are the author's own and the site is not responsible for them.",
                        "Read also:"])
    bodies = ["Parliament debated the budget amendments for the southern provinces today.",
              "The electricity ministry increased supply hours in the capital this week.",
              "Forecasters expect temperatures above fifty degrees in Basra.",
              "Football: the national team qualified for the final round of the cup."]
    rows = [{"id": f"n{i}", "title": " ".join(b.split()[:3]), "text": f"{b}\n{footer}", "source": "paper"}
            for i, b in enumerate(bodies)]
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        first = archive.add_paths([write_jsonl(tmp_path / "a.jsonl", rows[:2])])
        assert first.refreshed == 0 and archive.db.boilerplate_keys("paper", 3) == set()  # seen twice: not yet
        report = archive.add_paths([write_jsonl(tmp_path / "b.jsonl", rows[2:])])
        assert len(archive.db.boilerplate_keys("paper", 3)) == 3
        stored = [archive.db.article(f"n{i}") for i in range(4)]
        plain = prepare_article(archive_article(rows[0]), set(), archive.config.embed_max_chars)
        assert stored[0].content_hash != plain.content_hash  # the footer was left out of the content
        assert prepare_article(archive_article(rows[0]), archive.db.boilerplate_keys("paper", 3),
                              archive.config.embed_max_chars).content_hash \
            == stored[0].content_hash
        assert report.refreshed == 2  # the two articles stored before the footer was recognised were re-derived
        assert archive.db.article("n0").text.endswith("Read also:")  # display text untouched


WEATHER = ["Heavy rain is expected across the north of the country on Tuesday, with flood warnings issued for "
           "three rivers and travel disruption likely.",
           "A heatwave will bring temperatures of up to 38 degrees to the south this weekend, and officials urged "
           "residents to stay indoors at midday.",
           "Fog will cover the coast on Friday morning, delaying ferries, before clearing by the afternoon with "
           "sunny spells."]


@pytest.mark.parametrize("outlet", ["source", "url"])
def test_a_headline_a_source_puts_on_many_articles_is_a_label_not_a_story(tmp_path, outlet):
    """Three different forecasts that one outlet titles "Weather": the shared headline is its boilerplate from
    the third on (the stored two are re-derived, display untouched), and stops making them one story (real
    model; with two, the one-word headline still outweighs bodies that differ). The outlet is the source, or
    for records without one the URL's host (with or without www.)."""
    rows = [{"id": f"w{i}", "title": "Weather", "text": t,
             **({"source": "daily.example"} if outlet == "source" else
                {"url": f"https://{'www.' * (i % 2)}daily.example/weather/{i}"})} for i, t in enumerate(WEATHER)]
    with Archive(tmp_path / "s") as archive:
        archive.add_paths([write_jsonl(tmp_path / "a.jsonl", rows[:2])])
        assert archive.compare("w0", "w1")["tier"] == "same_story"
        assert [g["size"] for g in archive.dedup()["groups"]] == [2]
        report = archive.add_paths([write_jsonl(tmp_path / "b.jsonl", rows[2:])])
        assert report.refreshed == 2
        pair = archive.compare("w0", "w1")
        assert pair["tier"] != "same_story" and pair["evidence"]["title_cosine"] == pair["evidence"]["lead_cosine"]
        assert archive.dedup()["groups"] == [] and archive.db.article("w0").title == "Weather"


def test_a_store_from_before_headlines_counted_counts_them_at_its_next_write(tmp_path):
    """A store written before headlines counted toward boilerplate (and before articles without a source
    counted toward their URL's host): its next add counts the stored headlines too (once), so the third
    "Weather" of the source is the one that makes it a label; the same for the lines of a host's articles."""
    rows = [{"id": f"w{i}", "title": "Weather", "text": t, "source": "daily.example"} for i, t in enumerate(WEATHER)]
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        archive.add_paths([write_jsonl(tmp_path / "a.jsonl", rows[:2])])
        title_key = line_key("Weather")
        with archive.db.transaction():  # as the earlier version left it: no headline counted, no marker
            archive.db.conn.execute("DELETE FROM source_lines WHERE line_key = ?", (title_key,))
            archive.db.conn.execute("DELETE FROM meta WHERE key = 'derivation'")
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        assert archive.db.get_meta("derivation") == "1"
        report = archive.add_paths([write_jsonl(tmp_path / "b.jsonl", rows[2:])])
        assert archive.db.boilerplate_keys("daily.example", 3) == {title_key}
        assert report.refreshed == 2 and archive.db.get_meta("derivation") == str(DERIVATION)
        archive.add_paths([write_jsonl(tmp_path / "c.jsonl", [{**rows[0], "id": "w9", "text": "Snow on Monday."}])])
        n = archive.db.conn.execute("SELECT n FROM source_lines WHERE line_key = ?", (title_key,)).fetchone()[0]
        assert n == 4  # counted once each
    footer = "Subscribe to our newsletter for the day's forecasts."
    hosted = [{"id": f"h{i}", "title": f"Forecast {'abc'[i]}", "text": f"{t}\n{footer}",
               "url": f"https://wx.example/{i}"} for i, t in enumerate(WEATHER)]
    with Archive(tmp_path / "h", embedder=HashEmbedder()) as archive:
        archive.add_paths([write_jsonl(tmp_path / "h1.jsonl", hosted[:2])])
        with archive.db.transaction():  # the earlier version counted nothing for articles without a source
            archive.db.conn.execute("DELETE FROM source_lines")
            archive.db.conn.execute("UPDATE meta SET value = '1' WHERE key = 'derivation'")
    with Archive(tmp_path / "h", embedder=HashEmbedder()) as archive:
        report = archive.add_paths([write_jsonl(tmp_path / "h2.jsonl", hosted[2:])])
        assert archive.db.boilerplate_keys("host:wx.example", 3) == {line_key(footer)} and report.refreshed == 2


DISCLAIMER = ("The network provides the information \"as is\" without any undertaking or warranty of any kind, "
              "express or implied. It disclaims responsibility for the privacy practices or content of the sites "
              "attached to its network, including images and videos. For questions on the use and reuse of this "
              "content, please contact the provider of the article named above.")
WIRE = [("Jordan: the groom who caught the virus sends a message to the guests of his wedding",
         "The Jordanian groom who caught the coronavirus and passed it to guests at his wedding in Irbid sent a "
         "message on Wednesday asking everyone who attended to isolate and get tested."),
        ("Kuwait and Britain close shops and cafes; the government will pay employees' wages",
         "Britain ordered shops, cafes and restaurants to close on Friday and said the government would pay "
         "most of the wages of employees sent home, as Kuwait announced similar closures."),
        ("Gaza closes its mosques for two weeks to stop the spread of the coronavirus",
         "The religious affairs ministry in Gaza closed all mosques from dawn on Sunday for two weeks to prevent "
         "the spread of the new coronavirus, and the health ministry reported a severe shortage of medicines.")]


def test_an_article_whose_body_is_only_its_outlets_boilerplate_is_read_as_its_headline(tmp_path):
    """A wire page that carries the outlet's disclaimer where the story should be (three such pages of one
    outlet make it boilerplate): three different stories were one another's exact duplicates (the same body,
    3 of them "copy of" the first). Each is now its headline alone, and joins the full report of its own story
    (real model)."""
    rows = [{"id": f"w{i}", "title": title, "text": DISCLAIMER, "source": "wire.example"}
            for i, (title, _) in enumerate(WIRE)]
    rows += [{"id": f"f{i}", "title": title.split(":")[0].split(";")[0], "text": body, "source": "daily.example"}
             for i, (title, body) in enumerate(WIRE)]
    with Archive(tmp_path / "s") as archive:
        archive.add_paths([write_jsonl(tmp_path / "a.jsonl", rows)])
        assert archive.db.boilerplate_keys("wire.example", 3) == {line_key(DISCLAIMER)}
        for i in range(3):
            alone = prepare_article(archive_article(rows[i]), {line_key(DISCLAIMER)}, archive.config.embed_max_chars)
            assert alone.match_input == alone.embed_input == alone.title_input == WIRE[i][0]
        for i, j in ((0, 1), (0, 2), (1, 2)):
            pair = archive.compare(f"w{i}", f"w{j}")
            assert pair["tier"] not in ("duplicate", "same_story"), pair
        groups = sorted(sorted(m["id"] for m in g["members"]) for g in archive.dedup()["groups"])
        assert groups == [["f0", "w0"], ["f1", "w1"], ["f2", "w2"]]
    # an outlet's lines that are also its headline leave the text as given (nothing of the article's own)
    row = {"id": "x", "title": DISCLAIMER, "text": DISCLAIMER}
    assert prepare_article(archive_article(row), {line_key(DISCLAIMER)}, 4000).match_input == DISCLAIMER


def test_a_site_name_an_outlet_puts_on_its_headlines_is_cut_off(tmp_path):
    """"... - The Daily Example" on three of an outlet's headlines is its boilerplate: cut off what the headline
    embedding and matching read (display untouched), so two headlines on different subjects are not made alike
    by it (real model: the suffix raises such a pair's headline cosine by about 0.2)."""
    heads = ["Storm Boris brings deadly floods to central Europe", "Apple unveils iPhone 16 with a new camera button",
             "Parliament debates the budget amendments for the southern provinces"]
    rows = [{"id": f"h{i}", "title": f"{h} - The Daily Example", "text": f"{h} - The Daily Example",
             "source": "daily.example"} for i, h in enumerate(heads)]
    with Archive(tmp_path / "s") as archive:
        archive.add_paths([write_jsonl(tmp_path / "a.jsonl", rows)])
        cut = archive.compare("h0", "h1")["evidence"]
        assert archive.db.article("h0").title == rows[0]["title"]
    bare = [{**r, "source": None} for r in rows]  # no outlet, no boilerplate: the suffix stays
    with Archive(tmp_path / "b") as archive:
        archive.add_paths([write_jsonl(tmp_path / "b.jsonl", bare)])
        kept = archive.compare("h0", "h1")["evidence"]
    assert cut["title_cosine"] < kept["title_cosine"] - 0.05 and cut["lead_cosine"] < kept["lead_cosine"] - 0.05
    keys = {affix_key("The Daily Example")}
    prepared = prepare_article(archive_article(rows[0]), keys, 4000)
    assert prepared.title_input == prepared.embed_input == heads[0]
    assert strip_title_affixes("Reuters | Storm hits Europe", {affix_key("Reuters")}) == "Storm hits Europe"
    assert strip_title_affixes("Storm - floods - The Daily Example", keys) == "Storm - floods"
    assert strip_title_affixes("Sudani: no need for troops", keys) == "Sudani: no need for troops"
    assert strip_title_affixes("The Daily Example", keys) == "The Daily Example"  # nothing else: as given
    assert title_affix_keys("Sudani: no need for troops") == set()


TURKISH = ("İstanbul'da İçişleri Bakanlığı yeni trafik kurallarını açıkladı. İzmir ve İstanbul'da denetimler "
           "artırılacak, kurallara uymayan sürücülere ağır cezalar verilecek.")


def members(archive) -> list[list[tuple[str, str]]]:
    """Each group's members with their tiers."""
    return sorted(sorted((m["id"], m["tier"]) for m in g["members"]) for g in archive.dedup()["groups"])


def test_a_store_derived_by_earlier_rules_rederives_what_they_change_at_its_next_write(tmp_path, monkeypatch):
    """Written by the earlier rules (a body of boilerplate only kept as the text; Turkish İ folded to "i" and a
    combining dot, which split "İstanbul" into two words), the three wire pages are duplicates, and a reprint of
    the Turkish article added now would not have its stored copy's content hash. The next add re-derives those
    articles once (and only those), and both answers are right; the site's name on another outlet's headlines
    ("... - Daily Example") is counted and cut off then too."""
    import storycluster.boilerplate as boilerplate
    import storycluster.featurize as featurize
    import storycluster.lexical.minhash as minhash
    import storycluster.normalize as normalize

    rows = [{"id": f"w{i}", "title": title, "text": DISCLAIMER, "source": "wire.example"}
            for i, (title, _) in enumerate(WIRE)]
    rows.append({"id": "f0", "title": "Other news", "text": WIRE[0][1] + "\n" + DISCLAIMER, "source": "wire.example"})
    rows.append({"id": "t1", "title": "Trafik", "text": TURKISH, "lang": "tr"})
    rows += [{"id": f"s{i}", "title": f"{title} - Daily Example", "text": body, "source": "daily.example"}
             for i, (title, body) in enumerate(WIRE)]
    # a Turkish outlet's byline with İ: boilerplate under either rule, but its line's key changes with the fold
    rows += [{"id": f"k{i}", "title": f"Haber {i}", "text": f"{body}\nİHA - İstanbul Haber Merkezi", "lang": "tr",
              "source": "haber.example"} for i, (_, body) in enumerate(WIRE)]
    kept = featurize.strip_boilerplate
    with monkeypatch.context() as m:  # the earlier rules
        m.setattr(featurize, "strip_boilerplate", lambda text, keys: kept(text, keys) or text)
        m.setattr(featurize, "strip_title_affixes", lambda title, keys: title)
        m.setattr(boilerplate, "title_affix_keys", lambda title: set())
        m.setattr(normalize, "fold_case", str.casefold)
        m.setattr(minhash, "fold_case", str.casefold)
        with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
            archive.add_paths([write_jsonl(tmp_path / "a.jsonl", rows)])
            assert archive.compare("w0", "w1")["tier"] == "duplicate"
            with archive.db.transaction():  # as the earlier version left it
                archive.db.set_meta("derivation", "1")
    added = [{"id": "t2", "title": "Trafik", "text": TURKISH, "lang": "tr", "source": "baska.example"}]
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        report = archive.add_paths([write_jsonl(tmp_path / "b.jsonl", added)])
        assert archive.db.boilerplate_keys("daily.example", 3) == {affix_key("Daily Example")}
        assert report.refreshed == 7 and archive.db.get_meta("derivation") == str(DERIVATION)
        upgraded = ({a.id: (a.content_hash, a.embed_hash, a.title_hash) for a in archive.db.iter_articles()},
                    archive.db.all_boilerplate_keys(3), members(archive))
    with Archive(tmp_path / "fresh", embedder=HashEmbedder()) as archive:  # what the current rules give
        archive.add_paths([write_jsonl(tmp_path / "all.jsonl", rows + added)])
        fresh = ({a.id: (a.content_hash, a.embed_hash, a.title_hash) for a in archive.db.iter_articles()},
                 archive.db.all_boilerplate_keys(3), members(archive))
    assert upgraded == fresh
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        assert archive.compare("w0", "w1")["tier"] != "duplicate"
        assert all(sum(m["id"].startswith("w") for m in g["members"]) <= 1 for g in archive.dedup()["groups"])
        assert archive.compare("t1", "t2")["evidence"]["same_content"] is True
        report = archive.add_paths([write_jsonl(tmp_path / "c.jsonl", [{**ROWS[0], "id": "d"}])])
        assert report.refreshed == 0  # once


def archive_article(row):
    from storycluster import Article

    return Article(row["id"], row["title"], row["text"], source=row.get("source"))


def test_adds_keep_the_index_in_memory_instead_of_rebuilding_it(tmp_path, monkeypatch):
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        archive.add_paths([write_jsonl(tmp_path / "a.jsonl", ROWS[:2])])
    calls = []
    monkeypatch.setattr(Store, "_rebuild_index", lambda self: calls.append(1) or pytest.fail("rebuilt"))
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        archive.add_paths([write_jsonl(tmp_path / "b.jsonl", ROWS[2:])])
        archive.remove(["a"])
        assert len(archive.index) == 2
    assert calls == []


def test_a_regrouping_keeps_the_index_instead_of_retraining_it(tmp_path, hash_embedder, monkeypatch):
    """A full regrouping (``dedup --full-regroup``, new thresholds, a calibrated model) changes no vector: it
    used the index saved, not one rebuilt from every stored vector (at a million, 90 s and 0.6 GB more, and an
    IVF index trained anew on another sample, whose lists, and so every approximate search, differ)."""
    import random

    from .conftest import ivf_articles

    with Archive(tmp_path / "s", embedder=hash_embedder) as a:
        a.add(ivf_articles(random.Random(2))[:600])
        a.set_index("ivf")
        centroids = a.index._inner.quantizer.reconstruct_n(0, a.index.nlist)
    monkeypatch.setattr(Store, "_rebuild_index", lambda self, *_: pytest.fail("rebuilt from the database"))
    with Archive(tmp_path / "s", embedder=hash_embedder) as a:
        generation = a.db.generation
        a.regroup(full=True)
        a.set_thresholds(related=0.4)
        assert a.db.generation == generation + 2 and a.index.index_type == "ivf"
        assert (a.index._inner.quantizer.reconstruct_n(0, a.index.nlist) == centroids).all()
    with Archive(tmp_path / "s", embedder=hash_embedder) as a:  # and saved at the new generation
        assert (a.index._inner.quantizer.reconstruct_n(0, a.index.nlist) == centroids).all()


def test_numbers_are_kept_and_a_store_from_before_them_gets_them_on_open(tmp_path):
    from storycluster.lexical import number_codes, number_text

    rows = [{"id": "q1", "title": "Quake", "text": "A magnitude 6 quake hit at 4:59 on 12 May 2013, killing ٣٧ people.",
             "source": "wire"}, *ROWS]
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        archive.add_paths([write_jsonl(tmp_path / "a.jsonl", rows)])
        fresh = {a.id: a.numbers for a in archive.db.iter_articles()}
        before = archive.dedup()
    assert {number_text(int(c)) for c in np.frombuffer(fresh["q1"], np.uint64)} == {"6", "4", "59", "12", "2013", "37"}
    assert fresh["c"] == number_codes("no digits").tobytes() == b""
    con = sqlite3.connect(tmp_path / "s" / "store.sqlite")  # as an older version left it: no numbers column
    con.execute("ALTER TABLE articles DROP COLUMN numbers")
    con.commit()
    con.close()
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        assert {a.id: a.numbers for a in archive.db.iter_articles()} == fresh
        assert archive.dedup() == before


def test_damaged_config_lock_folder_and_unloadable_model_are_one_line(tmp_path, hash_embedder):
    import os
    import subprocess
    import sys

    from storycluster import Article

    with Archive(tmp_path / "s", embedder=hash_embedder) as archive:
        archive.add([Article("a", "t", "some text here")])
    config = tmp_path / "s" / "config.json"
    good = json.loads(config.read_text())
    for field, value, expected in (("thresholds", {"related": "high"}, "an object of numbers"),
                                   ("dim", [512], "a positive integer"), ("index_type", "fast", "one of auto")):
        config.write_text(json.dumps({**good, field: value}))
        with pytest.raises(StoreError, match=f"field '{field}' is .*, expected {expected}"):
            Archive(tmp_path / "s", embedder=hash_embedder)
    config.write_text("[1, 2]")  # a JSON array was an AttributeError's traceback
    with pytest.raises(StoreError, match="config.json: expected a JSON object with a format_version"):
        Archive(tmp_path / "s", embedder=hash_embedder)
    config.write_text(json.dumps(good))
    (tmp_path / "s" / ".lock").unlink(missing_ok=True)
    (tmp_path / "s" / ".lock").mkdir()
    with Archive(tmp_path / "s", embedder=hash_embedder) as archive, \
            pytest.raises(StoreError, match="cannot open the store's lock file"):
        archive.add([Article("b", "t", "other text here")])
    p = subprocess.run([sys.executable, "-m", "storycluster", "add", "--store", str(tmp_path / "new"), "--model",
                        str(tmp_path / "no-such-model"), "seeds/articles.jsonl"], capture_output=True, text=True,
                       timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert p.returncode == 1 and "cannot load this sentence-transformers model" in p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "new").exists()
    assert not [f for f in (tmp_path / "s").iterdir() if f.name.endswith(".tmp")]


def test_a_folder_with_another_programs_config_is_not_taken_for_a_store(tmp_path, hash_embedder):
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.json").write_text('{"name": "my-app", "version": 3}')
    with pytest.raises(StoreError, match="project: not a storycluster store .* give --store a new or empty folder"):
        Archive(project, embedder=hash_embedder)
    assert json.loads((project / "config.json").read_text()) == {"name": "my-app", "version": 3}
    assert sorted(f.name for f in project.iterdir()) == ["config.json"]


def test_a_lost_database_is_not_taken_for_an_empty_store(tmp_path, hash_embedder):
    import shutil

    from storycluster import Article

    with Archive(tmp_path / "s", embedder=hash_embedder) as archive:
        archive.add([Article("a", "t", "some text here")])
    shutil.copytree(tmp_path / "s", tmp_path / "empty")
    for f in (tmp_path / "s").glob("store.sqlite*"):
        f.unlink()
    with pytest.raises(StoreError, match="store.sqlite: missing, but config.json says the store holds generation"):
        Archive(tmp_path / "s", embedder=hash_embedder)
    for f in (tmp_path / "empty").glob("store.sqlite-*"):
        f.unlink()
    (tmp_path / "empty" / "store.sqlite").write_bytes(b"")
    index_before = (tmp_path / "empty" / "index.faiss").read_bytes()
    with pytest.raises(StoreError, match=r"empty \(0 bytes\)"):
        Archive(tmp_path / "empty", embedder=hash_embedder)
    assert (tmp_path / "empty" / "index.faiss").read_bytes() == index_before  # nothing overwritten


def test_a_damaged_truncated_or_older_index_is_rebuilt_from_the_database(tmp_path, hash_embedder):
    import json
    import shutil

    from storycluster import Article

    store = tmp_path / "s"
    rows = [Article(f"a{i}", f"title {i}", f"story number {i} about topic {i % 3} with words {i * 7}")
            for i in range(40)]
    with Archive(store, embedder=hash_embedder) as archive:
        archive.add(rows[:30])
    shutil.copy(store / "index.faiss", tmp_path / "older.faiss")
    with Archive(store, embedder=hash_embedder) as archive:
        archive.add(rows[30:])
        expected = archive.related("a3", k=5)
    index = store / "index.faiss"
    good = index.read_bytes()

    def damaged(data: bytes, checksum: bool = True) -> dict:
        index.write_bytes(data)
        if not checksum:  # as written by a version that kept no checksum
            config = json.loads((store / "config.json").read_text())
            (store / "config.json").write_text(json.dumps({**config, "index_checksum": ""}))
        with Archive(store, embedder=hash_embedder) as archive:
            return {"related": archive.related("a3", k=5), "rebuilt": archive.stats()["index"]["rebuilt"]}

    middle = len(good) // 2
    flipped = good[:middle] + bytes(b ^ 0xFF for b in good[middle:middle + 64]) + good[middle + 64:]
    for data, checksum, why in ((flipped, True, "changed since it was written"),
                                (good[: len(good) // 3], False, "could not be read"),
                                ((tmp_path / "older.faiss").read_bytes(), False, "holds 30 vectors of")):
        got = damaged(data, checksum)
        assert why in got["rebuilt"] and got["related"] == expected
        assert all(item["score"] <= 1.0001 for item in got["related"]["related"])
    with Archive(store, embedder=hash_embedder) as archive:
        archive.add([Article("b", "t", "one more article to write the store again")])
        assert archive.stats()["index"]["rebuilt"] is None
    with Archive(store, embedder=hash_embedder) as archive:  # the rebuilt index was saved, with its checksum
        assert archive.stats()["index"]["rebuilt"] is None and len(archive.index) == 41


def test_an_index_lost_between_the_two_writes_is_saved_by_the_next_read_once(tmp_path, hash_embedder):
    from unittest import mock

    from storycluster import Article
    from storycluster.store.vector_index import VectorIndex

    store = tmp_path / "s"
    with Archive(store, embedder=hash_embedder) as archive:
        archive.add([Article(f"a{i}", "t", f"text number {i} here") for i in range(10)])
    (store / "index.faiss").unlink()  # a kill after the group commit, before the index write
    with Archive(store, embedder=hash_embedder) as archive:
        assert len(archive.dedup()["singletons"]) + sum(g["size"] for g in archive.dedup()["groups"]) == 10
    assert (store / "index.faiss").exists()
    with mock.patch.object(VectorIndex, "add", side_effect=AssertionError("rebuilt again")), \
            Archive(store, embedder=hash_embedder) as archive:
        assert len(archive.index) == 10 and archive.index_rebuilt is None  # loaded, not rebuilt


def test_a_read_only_store_can_be_read_and_says_it_cannot_be_written(tmp_path, hash_embedder):
    from unittest import mock

    from storycluster import Article

    store = tmp_path / "s"
    with Archive(store, embedder=hash_embedder) as archive:
        archive.add([Article(f"a{i}", "t", f"text number {i} here, about {i % 2}") for i in range(6)])
        before = (archive.dedup(), archive.related("a1", k=3), archive.stats()["articles"])
    files = {f.name: f.read_bytes() for f in store.iterdir() if f.is_file()}
    # as on a read-only volume (root, who runs CI, passes every permission check, so the check is mocked)
    with mock.patch("storycluster.store.store.os.access", return_value=False), \
            Archive(store, embedder=hash_embedder) as archive:
        assert archive.read_only
        assert (archive.dedup(), archive.related("a1", k=3), archive.stats()["articles"]) == before
        with pytest.raises(StoreError, match="the store is read-only here"):
            archive.add([Article("b", "t", "new text")])
        with pytest.raises(StoreError, match="the store is read-only here"):
            archive.remove(["a1"])
    assert {f.name: f.read_bytes() for f in store.iterdir() if f.is_file() and f.name in files} == files


def test_a_damaged_database_is_one_line_naming_it(tmp_path, hash_embedder):
    import subprocess
    import sys

    from storycluster import Article

    with Archive(tmp_path / "s", embedder=hash_embedder) as archive:
        archive.add([Article("a", "t", "some text here")])
    db = tmp_path / "s" / "store.sqlite"
    data = bytearray(db.read_bytes())
    data[:100] = b"x" * 100  # the header gone
    db.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="store.sqlite: not a readable store database"):
        Archive(tmp_path / "s", embedder=hash_embedder)
    p = subprocess.run([sys.executable, "-m", "storycluster", "stats", "--store", str(tmp_path / "s")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "not a readable store database" in p.stderr and "Traceback" not in p.stderr


def test_add_says_what_it_is_doing(tmp_path, seed_rows):
    from storycluster import Article

    first: list[str] = []
    stages: list[str] = []
    rows = [Article(r["id"], r.get("title") or "", r["text"], lang=r.get("lang")) for r in seed_rows[:4]]
    with Archive(tmp_path / "s") as archive:  # a new store loads the model when it is created
        archive.add(rows[:2], on_stage=first.append)
    with Archive(tmp_path / "s") as archive:  # an existing one when the first new text needs it
        archive.add(rows[:2], on_stage=stages.append)  # nothing new: no model, no grouping
        archive.add(rows[2:], on_stage=stages.append)
    assert first == ["adding", "grouping"]
    assert stages == ["adding", "adding", "loading the model", "adding", "grouping"]


def test_index_checksums_crc32_and_the_older_blake2b(tmp_path):
    """An index is checked against the CRC-32 written with it, or the BLAKE2b a store of 0.2's first releases wrote;
    a changed file fails either, and a file found whole is not read again while it is unchanged."""
    import hashlib
    from unittest import mock

    from storycluster.store import folder

    path = tmp_path / "index.faiss"
    path.write_bytes(b"\x00" * 4096 + b"vectors")
    crc = folder.file_checksum(path)
    blake = hashlib.blake2b(path.read_bytes()).hexdigest()
    assert crc.startswith("crc32:") and folder.checksum_matches(path, crc) and folder.checksum_matches(path, blake)
    with mock.patch.object(folder, "file_checksum", side_effect=AssertionError("read again")):
        assert folder.checksum_matches(path, crc)
    path.write_bytes(b"\x00" * 4096 + b"vectorz")
    assert not folder.checksum_matches(path, crc) and not folder.checksum_matches(path, blake)


def test_add_takes_dicts_checked_as_a_files_records(tmp_path, hash_embedder):
    """The Python API takes records as dicts (as JSONL gives them): validated like a file's, named by position,
    unknown fields a notice; in fail mode nothing is stored when one is bad."""
    good = {"id": "d1", "title": "Flood", "text": "A flood hit the town on Monday.", "author": "me", "date": "2024-09-10"}
    with Archive(tmp_path / "s", embedder=hash_embedder) as archive:
        with pytest.raises(InputError) as e:
            archive.add([good, {"id": "d2", "title": "no body"}, "d3"])
        assert archive.db.count() == 0
        assert str(e.value).splitlines()[:2] == [
            "records[1]: field 'text': missing or empty (every article needs its body text in 'text')",
            "records[2]: expected an article: an object (dict) of its fields, got str (give each article as its fields "
            "(id, title, text, ...) or as a storycluster.Article)"]
        report = archive.add(iter([good, {"id": "d2"}, Article(id="a1", title="", text="Another text entirely.")]),
                             on_error="skip")
        assert (report.added, [p.path for p in report.problems]) == (2, ["records[1]"])
        assert report.notices == ["records: fields not read: 'author' (1 record); storycluster reads id, title, text, "
                                  "url, source, published, lang (dates also from date, published_at, publishedAt, "
                                  "pubDate, datePublished, pub_date, publication_date, dateCreated)"]
        assert archive.article("d1")["published"] == "2024-09-10"
