"""RSS and Atom feeds as input: each item an article, its HTML as lines of text, bad items named by their line,
nothing fetched; a feed of the seed archive groups as its JSONL does (the real model)."""

import subprocess
import sys
from html import escape

from storycluster import Archive
from storycluster.article import Article
from storycluster.errors import Problem
from storycluster.ingest import read_path, read_paths, spool_stdin

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel>
  <title>Example Wire</title>
  <link>https://wire.example/</link>
  <language>ar</language>
  <item>
    <title>السوداني: لا نحتاج إلى قوات أجنبية</title>
    <link>https://wire.example/a/1</link>
    <guid isPermaLink="false">wire-1</guid>
    <pubDate>Tue, 10 Sep 2024 04:00:00 GMT</pubDate>
    <description><![CDATA[<p>قال رئيس الوزراء <b>محمد شياع السوداني</b> لبلومبرغ.</p><p>The post appeared first on Wire.</p>
    <script>alert(1)</script><style>p {}</style>]]></description>
  </item>
  <item>
    <title>Headline &amp; nothing else</title>
    <link>/a/2</link>
    <guid>wire-2</guid>
    <pubDate>Wed, 11 Sep 2024 08:30:00 +0300</pubDate>
    <source url="https://other.example/rss">Other Outlet</source>
  </item>
  <item>
    <title>No id at all</title>
    <description>plain text</description>
  </item>
  <item>
    <title>Script link</title>
    <guid isPermaLink="false">wire-4</guid>
    <link>javascript:alert(1)</link>
    <description>text</description>
  </item>
  <item>
    <title>Full content</title>
    <link>https://wire.example/a/5</link>
    <description>A short teaser.</description>
    <content:encoded><![CDATA[<h2>Sub</h2><p>First paragraph,<br/>its second line.</p>
      <ul><li>one</li><li>two</li></ul>]]></content:encoded>
  </item>
</channel>
</rss>
"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="fr">
  <title>Le Fil</title>
  <link href="https://lefil.example/"/>
  <id>urn:uuid:feed</id>
  <updated>2024-09-12T10:00:00Z</updated>
  <entry>
    <title>Soudani à Bloomberg</title>
    <link href="/articles/3"/>
    <id>tag:lefil.example,2024:3</id>
    <updated>2024-09-12T09:00:00+02:00</updated>
    <content type="html">&lt;p&gt;Le Premier ministre irakien a déclaré...&lt;/p&gt;</content>
  </entry>
  <entry xml:lang="en">
    <title type="text">English entry</title>
    <link href="https://lefil.example/en/4"/>
    <id>tag:lefil.example,2024:4</id>
    <published>2024-09-12T11:00:00Z</published>
    <updated>2024-09-13T11:00:00Z</updated>
    <summary>A summary in English.</summary>
  </entry>
</feed>
"""


def test_rss_items_are_articles_and_bad_items_are_named_by_line(tmp_path):
    path = tmp_path / "wire.xml"
    path.write_text(RSS, encoding="utf-8")
    notices: list[str] = []
    out = list(read_path(path, notices=notices))
    assert notices == []
    first, headline, no_id, script, full = out
    assert isinstance(first, Article) and first.id == "wire-1"
    assert first.title == "السوداني: لا نحتاج إلى قوات أجنبية"  # RTL text kept as text
    # paragraphs as lines (a feed's appended line can then be found as the outlet's boilerplate); no script, no style
    assert first.text == "قال رئيس الوزراء محمد شياع السوداني لبلومبرغ.\nThe post appeared first on Wire."
    assert (first.url, first.source, first.lang) == ("https://wire.example/a/1", "Example Wire", "ar")
    assert first.published == "2024-09-10T04:00:00+00:00" and first.origin == f"{path}:7"
    # no description: the title is the text; a relative link is resolved against the channel's; <source> wins
    assert (headline.id, headline.title, headline.text) == ("wire-2", "Headline & nothing else", "Headline & nothing else")
    assert (headline.url, headline.source, headline.published) == ("https://wire.example/a/2", "Other Outlet",
                                                                   "2024-09-11T08:30:00+03:00")
    assert isinstance(no_id, Problem) and (no_id.line, no_id.field) == (22, "guid")
    assert "no guid, id or link" in str(no_id)
    assert isinstance(script, Problem) and (script.line, script.field) == (26, "url")
    assert full.text == "Sub\nFirst paragraph,\nits second line.\none\ntwo"  # the full content, not the teaser


def test_atom_entries_languages_and_dates(tmp_path):
    path = tmp_path / "fil.atom"
    path.write_text(ATOM, encoding="utf-8")
    fr, en = read_path(path)
    assert (fr.id, fr.url, fr.lang, fr.source) == ("tag:lefil.example,2024:3", "https://lefil.example/articles/3",
                                                   "fr", "Le Fil")
    assert (fr.text, fr.published) == ("Le Premier ministre irakien a déclaré...", "2024-09-12T09:00:00+02:00")
    assert (en.lang, en.text, en.published) == ("en", "A summary in English.", "2024-09-12T11:00:00Z")


def test_what_is_no_feed_and_a_guid_that_is_no_address(tmp_path):
    (tmp_path / "page.xml").write_text("<html><body><p>hello</p></body></html>", encoding="utf-8")
    (tmp_path / "junk.rss").write_text("not xml at all", encoding="utf-8")
    (tmp_path / "empty.xml").write_text('<rss version="2.0"><channel><title>t</title></channel></rss>')
    for name, message in (("page.xml", "not an RSS or Atom feed"), ("junk.rss", "not an RSS or Atom feed"),
                          ("empty.xml", "a feed with no items")):
        [problem] = read_path(tmp_path / name)
        assert isinstance(problem, Problem) and problem.message.startswith(message), problem
        assert "give an RSS or Atom feed file" in problem.hint
    # an RSS guid is a permalink unless it says otherwise; one that is no address is no link (not a bad record)
    (tmp_path / "g.rss").write_text('<rss version="2.0"><channel><title>t</title><link>https://t.example/</link>'
                                    '<item><title>T</title>'
                                    '<guid>item-7</guid><description>Body text.</description></item></channel></rss>')
    [item] = read_path(tmp_path / "g.rss")
    assert (item.id, item.url, item.text) == ("item-7", None, "Body text.")


def test_a_language_that_is_no_tag_is_detected_and_said_so(tmp_path):
    path = tmp_path / "en.rss"
    path.write_text('<rss version="2.0"><channel><title>t</title><language>English</language><item><title>Storm</title>'
                    '<guid>s1</guid><description>Storm Boris brought heavy rain and floods to central Europe this '
                    'week, forcing thousands from their homes.</description></item></channel></rss>', encoding="utf-8")
    notices: list[str] = []
    [item] = read_path(path, notices=notices)
    assert isinstance(item, Article) and item.lang is None  # left to detection, as when a feed names none
    assert notices == [f"{path}: language not read, not a language tag: 'English' (1 item); those items' languages "
                       "are detected from their text"]


def test_a_malformed_feed_is_read_leniently_and_said_so(tmp_path):
    path = tmp_path / "broken.rss"
    path.write_text('<rss version="2.0"><channel><title>t</title><item><title>A & B</title><guid>b1</guid>'
                    '<description>text <b>bold</description></item></channel></rss>', encoding="utf-8")
    notices: list[str] = []
    [item] = read_path(path, notices=notices)
    assert (item.id, item.title, item.text) == ("b1", "A & B", "text bold")
    assert len(notices) == 1 and notices[0].startswith(f"{path}: not well-formed XML (line 1, column ")
    assert "its 1 item was read leniently" in notices[0]


def test_nothing_is_fetched_not_even_an_external_entity(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-CONTENT")
    path = tmp_path / "xxe.xml"
    path.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
                    '<rss version="2.0"><channel><title>t</title><item><title>x &xxe;</title><guid>g1</guid>'
                    '<description>d &xxe; end</description></item></channel></rss>', encoding="utf-8")
    out = list(read_path(path, notices=[]))
    assert out and all("SECRET" not in str(r) for r in out)


def test_a_folder_reads_rss_and_atom_but_not_other_xml(tmp_path):
    (tmp_path / "wire.rss").write_text(RSS, encoding="utf-8")
    (tmp_path / "fil.atom").write_text(ATOM, encoding="utf-8")
    (tmp_path / "sitemap.xml").write_text('<urlset><url><loc>https://x.example/</loc></url></urlset>')
    out = list(read_path(tmp_path))
    assert sum(isinstance(r, Article) for r in out) == 5 and sum(isinstance(r, Problem) for r in out) == 2
    assert not any("sitemap" in str(r) for r in out if isinstance(r, Problem))


def test_a_feed_on_standard_input(tmp_path):
    import io

    spooled = spool_stdin(io.BytesIO(b"\xef\xbb\xbf\n  " + ATOM.encode()))
    try:
        assert spooled.suffix == ".xml"
        assert [a.id for a in read_paths([(spooled, "<stdin>")])] == ["tag:lefil.example,2024:3",
                                                                       "tag:lefil.example,2024:4"]
    finally:
        spooled.unlink()


def _as_atom(rows: list[dict]) -> str:
    """The rows as an Atom feed with no title of its own: each entry's language, date, link and outlet its own."""
    entries = []
    for r in rows:
        paragraphs = "".join(f"<p>{escape(p)}</p>" for p in r["text"].split("\n") if p.strip())
        lang = f' xml:lang="{r["lang"]}"' if r.get("lang") else ""
        entries.append(
            f"<entry{lang}><id>{escape(r['id'])}</id>"
            f"<title>{escape(r.get('title') or '')}</title><content type=\"html\">{escape(paragraphs)}</content>"
            + (f"<published>{r['published']}</published>" if r.get("published") else "")
            + (f"<link href=\"{escape(r['url'])}\"/>" if r.get("url") else "")
            + (f"<source><title>{escape(r['source'])}</title></source>" if r.get("source") else "")
            + "</entry>")
    head = '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n'
    return head + "\n".join(entries) + "\n</feed>"


def test_a_feed_of_the_seed_archive_groups_as_its_jsonl_does(tmp_path, seed_store, seed_rows):
    """The real model and the CLI: the seed archive written as one Atom feed (its texts as HTML paragraphs), piped
    to `add -`, gives the groups and representatives the JSONL gives."""
    feed = _as_atom(seed_rows).encode()
    store = tmp_path / "feed-store"
    exe = [sys.executable, "-m", "storycluster"]
    add = subprocess.run([*exe, "add", "-", "--store", str(store)], input=feed, capture_output=True, timeout=300)
    assert add.returncode == 0, add.stderr.decode()
    assert f"read {len(seed_rows)} records: {len(seed_rows)} added" in add.stderr.decode()
    groups = {}
    for where in (seed_store, store):
        with Archive(where) as archive:
            groups[where] = sorted((g["representative"], sorted(m["id"] for m in g["members"]))
                                   for g in archive.dedup()["groups"])
    assert groups[store] == groups[seed_store] and len(groups[store]) >= 3
    with Archive(store) as archive:
        stored = archive.article("en-sudani-bloomberg")
    given = next(r for r in seed_rows if r["id"] == "en-sudani-bloomberg")
    assert [stored[f] for f in ("title", "url", "published", "lang")] == [given.get(f) for f in
                                                                        ("title", "url", "published", "lang")]


def test_a_feed_in_the_encoding_it_declares(tmp_path):
    """An older Arabic site's feed in windows-1256, as its declaration says: read as text, not as mojibake."""
    path = tmp_path / "masalla.rss"
    path.write_bytes('<?xml version="1.0" encoding="windows-1256"?>\n<rss version="2.0"><channel><title>المسلة</title>'
                     '<language>ar</language><item><title>السوداني لبلومبرغ</title><guid>m-1</guid>'
                     '<description>&lt;p&gt;قال رئيس الوزراء&lt;/p&gt;</description></item></channel></rss>'
                     .encode("cp1256"))
    [item] = read_path(path, notices=[])
    assert (item.title, item.text, item.source, item.lang) == ("السوداني لبلومبرغ", "قال رئيس الوزراء", "المسلة", "ar")


def test_a_web_address_given_as_a_path_says_to_download_it():
    [problem] = read_path("https://example.com/news/feed.xml")
    assert isinstance(problem, Problem) and problem.path == "https://example.com/news/feed.xml"
    assert problem.message == "a web address: storycluster reads files and fetches nothing"
    assert problem.hint == "download it first, e.g. curl -s 'https://example.com/news/feed.xml' | storycluster add -"


def test_a_gzipped_feed_and_a_damaged_one(tmp_path):
    import gzip

    (tmp_path / "fil.atom.gz").write_bytes(gzip.compress(ATOM.encode()))
    assert [a.id for a in read_path(tmp_path / "fil.atom.gz")] == ["tag:lefil.example,2024:3", "tag:lefil.example,2024:4"]
    (tmp_path / "cut.xml.gz").write_bytes(gzip.compress(ATOM.encode())[:60])
    [problem] = read_path(tmp_path / "cut.xml.gz")
    assert isinstance(problem, Problem) and problem.message.startswith("not a readable gzip file")


def test_overlapping_feeds_store_each_item_once(tmp_path):
    """Two section feeds of one site list the same item: `add` stores it once and says so, without an error."""
    from .test_cli import run

    (tmp_path / "world.atom").write_text(ATOM, encoding="utf-8")
    (tmp_path / "top.atom").write_text(ATOM, encoding="utf-8")
    r = run("add", str(tmp_path / "world.atom"), str(tmp_path / "top.atom"), store=tmp_path / "s")
    assert r.exit_code == 0, r.output
    assert "read 4 records: 2 added, 0 updated, 0 unchanged, 2 repeated, 0 skipped; 2 stored" in r.stderr
