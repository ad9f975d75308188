"""Every kind of bad input gives a message naming file, line, field and what to do; skip mode reports it."""

import io
import json
from pathlib import Path

import pytest

from storycluster import Archive
from storycluster.article import Article
from storycluster.errors import InputError, Problem
from storycluster.ingest import read_path

from .conftest import write_jsonl

GOOD = {"id": "a1", "title": "Title", "text": "Some body text of the article."}


def records(path: Path, **kw) -> list:
    return list(read_path(path, **kw))


def only_problem(path: Path, **kw) -> Problem:
    out = [r for r in records(path, **kw) if isinstance(r, Problem)]
    assert len(out) == 1, out
    return out[0]


def test_jsonl_good_record(tmp_path):
    [a] = records(write_jsonl(tmp_path / "a.jsonl", [{**GOOD, "published": "2024-09-15T08:00:00Z", "lang": "EN"}]))
    assert (a.id, a.title, a.lang, a.published) == ("a1", "Title", "en", "2024-09-15T08:00:00Z")
    assert a.published_ts == 1726387200.0


def test_lang_is_read_as_a_language_tag_and_a_name_is_a_bad_record(tmp_path):
    given = ["EN", "en_US", "eng", "ara", "cmn", "zh-Hant-TW", "und", "English"]
    rows = [{**GOOD, "id": f"a{i}", "lang": lang} for i, lang in enumerate(given)]
    out = records(write_jsonl(tmp_path / "a.jsonl", rows))
    assert [a.lang for a in out[:7]] == ["en", "en-us", "en", "ar", "zh", "zh-hant-tw", None]
    assert (out[7].field, out[7].line) == ("lang", 8) and "'English' is not a language tag" in out[7].message


def test_malformed_json_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps(GOOD) + "\n{not json\n", encoding="utf-8")
    prob = only_problem(p)
    assert (prob.line, prob.field) == (2, None)
    assert str(prob).startswith(f"{p}:2: invalid JSON")
    assert "--on-error skip" in str(prob)


@pytest.mark.parametrize("field", ["id", "text"])
def test_missing_required_field(tmp_path, field):
    row = {k: v for k, v in GOOD.items() if k != field}
    prob = only_problem(write_jsonl(tmp_path / "m.jsonl", [GOOD | {"id": "ok"}, row]))
    assert (prob.line, prob.field) == (2, field)
    assert f":2: field '{field}': missing or empty" in str(prob)


def test_empty_text(tmp_path):
    prob = only_problem(write_jsonl(tmp_path / "e.jsonl", [GOOD | {"text": "   \n "}]))
    assert prob.field == "text" and "missing or empty" in prob.message


def test_duplicate_ids_in_one_file(tmp_path):
    prob = only_problem(write_jsonl(tmp_path / "d.jsonl", [GOOD, GOOD | {"title": "again"}]))
    assert (prob.line, prob.field) == (2, "id")
    assert "duplicate id 'a1' (first on line 1)" in prob.message


def test_bytes_that_are_not_utf8(tmp_path):
    p = tmp_path / "latin.jsonl"
    p.write_bytes(json.dumps(GOOD).encode() + b"\n" + '{"id": "x", "text": "caf\xe9"}'.encode("latin-1") + b"\n")
    prob = only_problem(p)
    assert prob.line == 2 and "not valid UTF-8 (byte 0xe9" in prob.message and "iconv" in prob.hint


def test_huge_article(tmp_path):
    prob = only_problem(write_jsonl(tmp_path / "big.jsonl", [GOOD | {"text": "x" * 20_000_000}]))
    assert prob.field == "text" and "20.0 MB, over the 5.0 MB limit" in prob.message and "--max-text-mb" in prob.hint


def test_bad_date_and_wrong_type(tmp_path):
    p = write_jsonl(tmp_path / "t.jsonl", [GOOD | {"published": "yesterday"}, GOOD | {"id": "b", "title": 5}])
    probs = [r for r in records(p) if isinstance(r, Problem)]
    assert [(x.line, x.field) for x in probs] == [(1, "published"), (2, "title")]


def test_dates_given_as_numbers_are_unix_time(tmp_path):
    """A number in a date field is Unix time: seconds, or milliseconds (pandas' to_json writes dates so); a number
    no date has, and a true/false, are bad records naming the field."""
    rows = [GOOD | {"id": "s", "published": 1726389000}, GOOD | {"id": "ms", "date": 1726389000123},
            GOOD | {"id": "big", "published": 10**20}, GOOD | {"id": "flag", "published": True}]
    out = records(write_jsonl(tmp_path / "n.jsonl", rows))
    assert [(a.id, a.published) for a in out[:2]] == [("s", "2024-09-15T08:30:00Z"),
                                                      ("ms", "2024-09-15T08:30:00.123000Z")]
    assert out[0].published_ts == 1726389000 and out[1].published_ts == 1726389000.123
    assert [(x.line, x.field) for x in out[2:]] == [(3, "published"), (4, "published")]
    assert "is not a Unix time in seconds or milliseconds" in out[2].message and "ISO-8601" in out[2].hint
    assert out[3].message == "expected a string, got bool"
    # a CSV has no numbers: nine digits or more alone are Unix time too (eight are an ISO date, 20240915)
    (tmp_path / "n.csv").write_text("id,text,published\nc1,Body,1726389000\nc2,Body,20240915\nc3,Body,12345678\n",
                                    encoding="utf-8")
    c1, c2, c3 = records(tmp_path / "n.csv")
    assert (c1.published, c2.published, c3.field) == ("2024-09-15T08:30:00Z", "20240915", "published")


def test_json_file_with_one_record_or_a_wrapped_list(tmp_path):
    """A .json file may hold one article written over several lines; an object that holds the list of articles
    under a key (an API's answer) is named as that, with the command that unwraps it, in .json and .jsonl alike."""
    (tmp_path / "one.json").write_text(json.dumps(GOOD, indent=2), encoding="utf-8")
    [a] = records(tmp_path / "one.json")
    assert (a.id, a.text) == (GOOD["id"], GOOD["text"])
    for name, text in (("api.json", json.dumps({"status": "ok", "articles": [GOOD, GOOD | {"id": "a2"}]}, indent=1)),
                       ("api.jsonl", json.dumps({"articles": [GOOD]}) + "\n")):
        (tmp_path / name).write_text(text, encoding="utf-8")
        prob = only_problem(tmp_path / name)
        n = 2 if name == "api.json" else 1
        assert prob.message == f"an object that holds a list of {n} object{'s' if n == 2 else ''} under 'articles', " \
                               "not an article"
        assert prob.hint == f"give the list itself, e.g. jq -c '.articles[]' {name} > articles.jsonl"
    from storycluster.ingest import STDIN_NAME, read_paths, spool_stdin

    spooled = spool_stdin(io.BytesIO(json.dumps({"items": [GOOD]}).encode()))
    try:
        [prob] = list(read_paths([(spooled, STDIN_NAME)]))
    finally:
        spooled.unlink()
    assert prob.hint == "pipe the list itself, e.g. ... | jq -c '.items[]' | storycluster add -"
    (tmp_path / "two.json").write_text(json.dumps(GOOD, indent=2) + "\n" + json.dumps(GOOD, indent=2),
                                       encoding="utf-8")
    prob = only_problem(tmp_path / "two.json")
    assert prob.message == "invalid JSON (Extra data at column 1)" and "one article object" in prob.hint


def test_unreadable_path(tmp_path):
    prob = only_problem(tmp_path / "nope.jsonl")
    assert prob.line is None and "cannot read" in prob.message and "No such file" in prob.message


def test_unknown_suffix(tmp_path):
    p = tmp_path / "a.docx"
    p.write_text("<a/>")
    assert "unknown file type '.docx'" in only_problem(p).message


def test_files_that_start_with_a_byte_order_mark(tmp_path):
    """A UTF-8 file from a Windows tool may start with a byte order mark: it is not part of the first record
    (JSONL, with CRLF line ends), the CSV header, or a text file's title."""
    (tmp_path / "a.jsonl").write_bytes(b"\xef\xbb\xbf" + (json.dumps(GOOD) + "\r\n" + json.dumps({**GOOD, "id": "a2"})
                                                          + "\r\n").encode())
    assert [(a.id, a.title) for a in records(tmp_path / "a.jsonl")] == [("a1", "Title"), ("a2", "Title")]
    (tmp_path / "a.csv").write_bytes(b"\xef\xbb\xbfid,title,text\r\nc1,T,Body text\r\n")
    assert [(a.id, a.title) for a in records(tmp_path / "a.csv")] == [("c1", "T")]
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages/one.txt").write_bytes("\ufeffالعنوان\nنص المقال".encode())
    [a] = records(tmp_path / "pages")
    assert (a.id, a.title) == ("one", "العنوان") and not a.text.startswith("\ufeff")


def test_html_pages_are_read_in_the_encoding_they_declare(tmp_path):
    """A page states its encoding by a byte order mark or its <meta charset>; one that states none is UTF-8; bytes
    not valid in the stated encoding, or an unknown charset, are reported, never guessed."""
    page = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1256"><title>السوداني'
            '</title></head><body><article><p>قال رئيس الوزراء العراقي محمد شياع السوداني في مقابلة مع بلومبرغ إن '
            'العراق لم يعد بحاجة إلى القوات الأميركية.</p></article></body></html>')
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "cp1256.html").write_bytes(page.encode("cp1256"))
    (folder / "bom16.html").write_bytes(b"\xff\xfe" + page.replace("windows-1256", "utf-16").encode("utf-16-le"))
    (folder / "plain.htm").write_bytes(page.replace("; charset=windows-1256", "").encode("utf-8"))
    (folder / "lies.html").write_bytes(page.replace("windows-1256", "utf-8").encode("cp1256"))
    (folder / "klingon.html").write_bytes(page.replace("windows-1256", "klingon").encode("utf-8"))
    out = {getattr(r, "id", None) or Path(r.path).stem: r for r in records(folder)}
    for good in ("cp1256", "bom16", "plain"):
        assert "السوداني" in out[good].text, good
    assert "not valid utf-8 (its <meta> declares utf-8)" in out["lies"].message
    assert "declares charset 'klingon'" in out["klingon"].message


def test_gzipped_data_files_and_json_arrays(tmp_path):
    """An archive as archive.jsonl.gz or a .csv.gz (also inside a folder), a .json file holding one array of
    records; a damaged gzip file is reported after the records read before the damage."""
    import gzip

    rows = [{**GOOD, "id": f"a{i}"} for i in range(3)]
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    assert [a.id for a in records(tmp_path / "a.jsonl.gz")] == ["a0", "a1", "a2"]
    folder = tmp_path / "dump"
    folder.mkdir()
    (folder / "b.csv.gz").write_bytes(gzip.compress(b"id,title,text\nc1,T,Body text\n"))
    (folder / "c.json").write_text(json.dumps([{**GOOD, "id": "j1"}, {**GOOD, "id": "j2"}, 7], indent=2),
                                   encoding="utf-8")
    out = records(folder)
    assert [getattr(r, "id", None) for r in out] == ["c1", "j1", "j2", None]
    assert str(out[3]).startswith(f"{folder / 'c.json'}:3: record 3 of the array: expected a JSON object, got int")
    whole = gzip.compress("".join(json.dumps({**GOOD, "id": f"d{i}", "text": f"text {i} " * 2000}) + "\n"
                                  for i in range(20)).encode())
    (tmp_path / "cut.jsonl.gz").write_bytes(whole[:len(whole) // 2])
    out = records(tmp_path / "cut.jsonl.gz")
    assert out and all(r.id.startswith("d") for r in out[:-1])
    assert "not a readable gzip file" in out[-1].message


def test_csv_with_quoted_multiline_field(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text('id,title,text,source\n1,T,"line one\nline two",S\n2,,\n3,X,"ok",\n', encoding="utf-8")
    out = records(p)
    assert [type(r).__name__ for r in out] == ["Article", "Problem", "Article"]
    assert out[0].text == "line one\nline two" and out[0].source == "S"
    assert (out[1].line, out[1].field) == (4, "text")


def test_csv_bad_bytes_point_at_the_line(tmp_path):
    p = tmp_path / "b.csv"
    p.write_bytes(b"id,title,text\n1,a,fine\n2,b,caf\xe9\n")
    prob = only_problem(p)
    assert prob.line == 3 and "UTF-8" in prob.message


def test_folder_of_html_and_txt(tmp_path):
    folder = tmp_path / "pages"
    (folder / "sub").mkdir(parents=True)
    body = " ".join(["The prime minister said the troops are no longer needed in the country."] * 6)
    (folder / "sub" / "p1.html").write_text(
        f"<html><head><title>PM interview</title></head><body><nav>Home | World | Sport</nav>"
        f"<article><h1>PM says troops not needed</h1><p>{body}</p></article>"
        f"<footer>Copyright footer text</footer></body></html>", encoding="utf-8")
    (folder / "n.txt").write_text("Headline here\nBody of the text file.", encoding="utf-8")
    out = records(folder)
    by_id = {a.id: a for a in out}
    assert set(by_id) == {"sub/p1", "n"}
    assert "no longer needed" in by_id["sub/p1"].text and "Home | World" not in by_id["sub/p1"].text
    assert by_id["n"].title == "Headline here"


def test_fail_mode_stores_nothing(tmp_path, hash_embedder):
    p = write_jsonl(tmp_path / "a.jsonl", [GOOD, {"id": "b"}])
    with Archive(tmp_path / "s", embedder=hash_embedder) as archive:
        with pytest.raises(InputError) as e:
            archive.add_paths([p])
        assert "a.jsonl:2: field 'text'" in str(e.value)
        assert archive.db.count() == 0


def test_skip_mode_accounts_for_every_record(tmp_path, hash_embedder):
    p = tmp_path / "mixed.jsonl"
    p.write_bytes(b"\n".join([
        json.dumps(GOOD).encode(), b"{broken", json.dumps({"id": "no-text"}).encode(),
        json.dumps(GOOD).encode(), json.dumps(GOOD | {"id": "a2", "text": "Other text"}).encode()]) + b"\n")
    second = write_jsonl(tmp_path / "second.jsonl", [GOOD | {"text": "same id in another file"}])
    with Archive(tmp_path / "s", embedder=hash_embedder) as archive:
        report = archive.add_paths([p, second, tmp_path / "missing.jsonl"], on_error="skip")
        assert archive.db.count() == 2
    assert report.read == 7
    assert report.added == 2 and report.repeated == 1 and report.skipped == 4  # line 4 repeats line 1
    assert report.read == report.added + report.updated + report.unchanged + report.repeated + report.skipped
    fields = [(Path(x.path).name, x.line, x.field) for x in report.problems]
    assert fields == [("mixed.jsonl", 2, None), ("mixed.jsonl", 3, "text"), ("second.jsonl", 1, "id"),
                      ("missing.jsonl", None, None)]


def test_a_record_repeated_field_for_field_is_stored_once(tmp_path, hash_embedder):
    """Overlapping exports and section feeds list one article twice: the same record again is stored once and
    counted as repeated, in one file or across files, even in fail mode; the same id with other fields is
    still a problem."""
    other = GOOD | {"id": "a2", "text": "Another article's text."}
    first = write_jsonl(tmp_path / "monday.jsonl", [GOOD, other, GOOD])
    second = write_jsonl(tmp_path / "tuesday.jsonl", [other])
    with Archive(tmp_path / "s", embedder=hash_embedder) as archive:
        report = archive.add_paths([first, second])
        assert archive.db.count() == 2
        assert (report.read, report.added, report.repeated, report.skipped) == (4, 2, 2, 0)
        again = archive.add([Article(id="a3", title="T", text="Body."), Article(id="a3", title="T", text="Body.")])
        assert (again.read, again.added, again.repeated) == (2, 1, 1)
        assert again.to_dict()["repeated"] == 1
        changed = write_jsonl(tmp_path / "wednesday.jsonl", [other, other | {"title": "Retitled"}])
        with pytest.raises(InputError) as e:
            archive.add_paths([changed])
        assert "wednesday.jsonl:2: field 'id': duplicate id 'a2' (first on line 1)" in str(e.value)


def test_a_deeply_nested_line_or_a_lone_surrogate_is_one_problem_not_the_whole_file(tmp_path, hash_embedder):
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "a", "text": "first article"}\n'
                    '{"id": "b", "text": "x\\ud800y"}\n'
                    '{"id": "c", "text": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
                    '{"id": "d", "text": "last article"}\n', encoding="utf-8")
    out = list(read_path(path))
    problems = [str(r) for r in out if isinstance(r, Problem)]
    assert [r.id for r in out if not isinstance(r, Problem)] == ["a", "d"]
    assert problems == [f"{path}:2: field 'text': holds a lone surrogate escape (\\ud800), not text "
                        "(fix the record or rerun with --on-error skip)",
                        f"{path}:3: JSON nested too deeply to read (fix the record or rerun with --on-error skip)"]
    with Archive(tmp_path / "s", embedder=hash_embedder) as archive:
        report = archive.add_paths([path], on_error="skip")
        assert (report.added, len(report.problems)) == (2, 2)
        with pytest.raises(InputError, match=":2: field 'text': holds a lone surrogate"):
            archive.add_paths([path])


def test_a_folder_reads_data_files_inside_it_and_never_follows_a_link_out(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("Private\nnot an article of this folder", encoding="utf-8")
    folder = tmp_path / "in"
    (folder / "2024").mkdir(parents=True)
    (folder / "2024" / "story.txt").write_text("A title\nThe body of the story.", encoding="utf-8")
    write_jsonl(folder / "feed.jsonl", [{"id": "feed-1", "text": "an article from a feed"}])
    (folder / "secret.txt").symlink_to(outside / "secret.txt")
    (folder / "elsewhere").symlink_to(outside, target_is_directory=True)
    (folder / "same.txt").symlink_to(folder / "2024" / "story.txt")  # a link inside the folder is read
    out = list(read_path(folder))
    assert sorted(r.id for r in out if not isinstance(r, Problem)) == ["2024/story", "feed-1", "same"]
    problems = sorted(str(r) for r in out if isinstance(r, Problem))
    assert problems == [f"{folder / name}: a symbolic link out of the folder; not followed (copy the file into "
                        "the folder to add it)" for name in ("elsewhere", "secret.txt")]


def test_csv_delimiters_long_fields_and_header_mistakes(tmp_path):
    semi = tmp_path / "semi.csv"
    semi.write_text("id;title;text\na;One;First text here\n", encoding="utf-8")
    assert [(r.id, r.text) for r in read_path(semi)] == [("a", "First text here")]
    big = tmp_path / "big.csv"
    big.write_text("id,text\nbig," + "w " * 100_000 + "\n", encoding="utf-8")  # past csv's 131,072 default
    assert [len(r.text) for r in read_path(big)] == [200_000]
    for name, header, message in (("noid.csv", "title,text", "no 'id' column in the header ('title', 'text')"),
                                  ("dup.csv", "id,text,text", "the header names 'text' twice"),
                                  ("body.csv", "id,title,body", "no 'text' column in the header ('id', 'title', 'body')")):
        path = tmp_path / name
        path.write_text(header + "\na,b,c\nd,e,f\n", encoding="utf-8")
        out = list(read_path(path))
        assert len(out) == 1 and isinstance(out[0], Problem) and message in str(out[0]) and out[0].line == 1


def test_a_quote_left_open_or_closed_mid_field_is_a_named_problem_not_a_swallowed_file(tmp_path):
    """A CSV quote never closed made one field of the rest of the file (its records gone in silence), and
    ``"x"y`` lost its quotes; both are problems at their line, and the records around them are read."""
    path = tmp_path / "q.csv"
    path.write_text('id,title,text\na,A,"x"y\nb,B,"fine, really"\nc,C,"never closed\nd,D,swallowed\n',
                    encoding="utf-8")
    out = list(read_path(path))
    assert [(o.line, o.message) if isinstance(o, Problem) else o.id for o in out] == [
        (2, "invalid CSV (',' expected after '\"')"), "b",
        (4, "a quoted field is not closed before the end of the file")]


def test_a_record_without_text_names_the_fields_it_has(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"id": "a", "title": "T", "body": "The body text.", "empty": ""}])
    [problem] = list(read_path(path))
    assert str(problem) == ("a.jsonl:1: field 'text': missing or empty (every article needs its body text in "
                            "'text'; its other fields: 'body')").replace("a.jsonl", str(path))


def test_folder_files_differing_only_in_extension_are_a_reported_duplicate_id(tmp_path, hash_embedder):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "story.txt").write_text("A title\nA story about trams in the city.", encoding="utf-8")
    (folder / "story.html").write_text("<html><head><title>T</title></head><body><p>A story about buses in the "
                                       "town centre today.</p></body></html>", encoding="utf-8")
    with Archive(tmp_path / "s", embedder=hash_embedder) as archive:
        report = archive.add_paths([folder], on_error="skip")
    assert report.added == 1 and len(report.problems) == 1
    assert "duplicate id 'story'" in str(report.problems[0])


def test_only_http_urls_are_stored():
    from storycluster.errors import Problem
    from storycluster.ingest import to_article

    for url in ("javascript:alert(1)", "JaVaScRiPt:alert(1)", " \tjavascript:alert(1)", "vbscript:x", "data:text/html,x",
                "/relative/path", "//host.example/x", "http://", "https://exa mple.org/", "ftp://host.example/f"):
        p = to_article({"id": "a", "text": "t", "url": url})
        assert isinstance(p, Problem) and p.field == "url" and "http(s)" in p.message, url
    ok = to_article({"id": "a", "text": "t", "url": "  https://news.example/a?b=1#c "})
    assert not isinstance(ok, Problem) and ok.url == "https://news.example/a?b=1#c"
    assert to_article({"id": "a", "text": "t", "url": ""}).url is None
