"""The seed page, end to end with the real bundled model, real FAISS and real SQLite."""

import json

import pytest

from storycluster import Archive

from .conftest import SUDANI_HEADLINES, write_jsonl

NOT_IRAQ = {"similar-06": "Niger", "similar-09": "Ukraine", "similar-10": "Côte d'Ivoire", "similar-08": "US elections"}


@pytest.fixture(scope="module")
def seed_dedup(seed_store):
    with Archive(seed_store, create=False) as archive:
        return archive.dedup()


def group_of(dedup: dict, article_id: str) -> dict | None:
    return next((g for g in dedup["groups"] if any(m["id"] == article_id for m in g["members"])), None)


def test_every_article_appears_exactly_once(seed_dedup, seed_rows):
    seen = [m["id"] for g in seed_dedup["groups"] for m in g["members"]] + seed_dedup["singletons"]
    assert sorted(seen) == sorted(r["id"] for r in seed_rows)
    for g in seed_dedup["groups"]:
        assert g["representative"] in [m["id"] for m in g["members"]] and len(g["members"]) >= 2
        assert {m["tier"] for m in g["members"]} <= {"duplicate", "same_story"}


def test_four_sudani_interview_headlines_form_one_group(seed_dedup):
    groups = {group_of(seed_dedup, i)["group"] if group_of(seed_dedup, i) else None for i in SUDANI_HEADLINES}
    assert len(groups) == 1 and None not in groups


def test_unrelated_headlines_are_in_no_iraq_group(seed_dedup):
    iraq = group_of(seed_dedup, "similar-03")
    iraq_groups = {g["group"] for g in seed_dedup["groups"]
                   if {m["id"] for m in g["members"]} & {"similar-03", "seed-reuters-deal", "seed-centcom-raid"}}
    assert iraq is not None
    for article_id, what in NOT_IRAQ.items():
        g = group_of(seed_dedup, article_id)
        assert g is None or g["group"] not in iraq_groups, f"{what} headline was grouped with Iraq stories"


def test_english_and_french_reports_of_the_interview_join_the_group(seed_dedup):
    group = group_of(seed_dedup, "similar-03")
    ids = {m["id"] for m in group["members"]}
    assert {"en-sudani-bloomberg", "fr-sudani-bloomberg", "seed-readalso-sudani"} <= ids


def test_other_cross_lingual_pairs_group(seed_dedup):
    for a, b in [("en-storm-boris", "fr-tempete-boris"), ("seed-centcom-raid", "fr-centcom-raid")]:
        assert group_of(seed_dedup, a) is not None and group_of(seed_dedup, a) == group_of(seed_dedup, b)


def test_same_outlet_boilerplate_does_not_make_unrelated_articles_alike(seed_dedup):
    # three unrelated Al-Masalla items share the page's byline, disclaimer and author footer
    for article_id in ("masalla-electricity", "masalla-budget", "masalla-heat"):
        assert article_id in seed_dedup["singletons"]


def test_related_for_the_main_analysis(seed_store):
    with Archive(seed_store, create=False) as archive:
        result = archive.related("seed-main", k=10)
    items = result["related"]
    ids = [i["id"] for i in items]
    assert result["query"] == "seed-main" and "seed-main" not in ids
    assert not any("seed-main" in [o["id"] for o in i["also_in"]] for i in items)
    # the four copies of the interview collapse into one entry that lists the others
    entries = [i for i in items if {i["id"], *(o["id"] for o in i["also_in"])} & set(SUDANI_HEADLINES)]
    assert len(entries) == 1
    assert set(SUDANI_HEADLINES) <= {entries[0]["id"], *(o["id"] for o in entries[0]["also_in"])}
    rank = {i["id"]: n for n, i in enumerate(items)}
    iraq_rank = rank[entries[0]["id"]]
    withdrawal = next(i for i in items if "seed-reuters-deal" in {i["id"], *(o["id"] for o in i["also_in"])})
    for other in ("similar-06", "similar-09", "similar-10"):
        entry = next((i for i in items if other in {i["id"], *(o["id"] for o in i["also_in"])}), None)
        if entry is not None:
            assert rank[entry["id"]] > iraq_rank and rank[entry["id"]] > rank[withdrawal["id"]]
    assert all(i["tier"] in ("same_story", "related") for i in items)
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)


def test_related_for_text_not_in_the_store(seed_store):
    with Archive(seed_store, create=False) as archive:
        result = archive.related(text="Le Premier ministre irakien dit que les troupes américaines ne sont plus "
                                      "nécessaires en Irak après la défaite de l'État islamique.", k=3)
    assert result["query"] is None
    top = result["related"][0]
    assert set(SUDANI_HEADLINES) & {top["id"], *(o["id"] for o in top["also_in"])}


def test_tashkeel_only_copy_is_a_duplicate(seed_store_copy, seed_rows):
    main = next(r for r in seed_rows if r["id"] == "seed-readalso-sudani")
    voweled = main["text"].replace("قال رئيس الوزراء العراقي", "قَالَ رَئِيسُ الوُزَرَاءِ العِرَاقِيُّ")
    voweled = voweled.replace("الولايات المتحدة", "الوِلَايَاتُ المُتَّحِدَةُ")
    assert voweled != main["text"]
    copy = dict(main, id="voweled-copy", text=voweled, source="another-outlet")
    with Archive(seed_store_copy, create=False) as archive:
        archive.add_paths([write_jsonl(seed_store_copy.parent / "copy.jsonl", [copy])])
        assert archive.db.article("voweled-copy").content_hash == archive.db.article("seed-readalso-sudani").content_hash
        group = group_of(archive.dedup(), "voweled-copy")
        members = {m["id"]: m for m in group["members"]}
        assert "seed-readalso-sudani" in members
        pair = archive.compare("voweled-copy", "seed-readalso-sudani")
    assert pair["tier"] == "duplicate" and pair["similarity"] == 1.0
    assert members["voweled-copy"]["tier"] == members["seed-readalso-sudani"]["tier"] == "duplicate"
    # the longer-standing copy (the one without a date loses to none here, so the longest) represents them
    copies = {members["voweled-copy"]["duplicate_of"], members["seed-readalso-sudani"]["duplicate_of"]}
    assert copies <= {None, "voweled-copy", "seed-readalso-sudani"} and len(copies - {None}) == 1


def test_dedup_json_is_serialisable_with_arabic_as_text(seed_dedup):
    text = json.dumps(seed_dedup, ensure_ascii=False)
    assert "السوداني" in text


def test_main_analysis_is_not_a_copy_of_the_interview(seed_dedup):
    # it discusses the same withdrawal question but is a different piece: related, not the same story
    group = group_of(seed_dedup, "similar-03")
    assert "seed-main" not in {m["id"] for m in group["members"]}


def test_the_sudani_story_as_headlines_only_is_one_group(seed_rows, tmp_path):
    """Headline-only items across scripts (4 Arabic headlines, the read-also Arabic one, English, French): one
    group, with the real model (the headline regime: semantic evidence only)."""
    story = {"seed-readalso-sudani", "en-sudani-bloomberg", "fr-sudani-bloomberg", *SUDANI_HEADLINES}
    heads = [{"id": r["id"], "text": r["title"], "lang": r.get("lang")} for r in seed_rows
             if r["id"] in story and r.get("title")]
    others = [{"id": r["id"], "text": r["title"], "lang": r.get("lang")} for r in seed_rows
              if r["id"] in ("en-storm-boris", "fr-tempete-boris", "en-iphone16") and r.get("title")]
    with Archive(tmp_path / "heads") as archive:
        archive.add_paths([write_jsonl(tmp_path / "heads.jsonl", heads + others)])
        groups = archive.dedup()["groups"]
    assert len(heads) == 7 and sorted(sorted(m["id"] for m in g["members"]) for g in groups) == sorted([
        sorted(story), ["en-storm-boris", "fr-tempete-boris"]])
