"""Property tests of the readers and of add: arbitrary Unicode and bytes never crash a reader, every line or
file read gives exactly one record (an article or a reported problem), and every record given to add is
stored or reported (read = added + updated + unchanged + skipped)."""

from __future__ import annotations

import csv
import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storycluster import Archive
from storycluster.article import Article
from storycluster.errors import Problem
from storycluster.ingest import read_path

from .conftest import HashEmbedder

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

any_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80)
field_value = st.one_of(st.none(), any_text, st.integers(), st.booleans(), st.lists(st.integers(), max_size=2))
record = st.fixed_dictionaries({}, optional={f: field_value for f in ("id", "title", "text", "url", "source",
                                                                       "published", "lang")})
line = st.one_of(
    record.map(lambda r: json.dumps(r, ensure_ascii=False).encode()),
    record.map(lambda r: json.dumps(r).encode()),
    any_text.map(lambda t: t.replace("\n", " ").encode()),
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b" ")),
    st.builds(lambda i, t: json.dumps({"id": f"ok-{i}", "title": t, "text": t + " body"}, ensure_ascii=False).encode(),
              st.integers(0, 5), any_text),
)


def records_of(path) -> list:
    return list(read_path(path))


@PROPS
@given(st.lists(line, max_size=25))
def test_jsonl_reader_one_record_per_line(tmp_path, lines):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    expected = sum(1 for raw in path.read_bytes().split(b"\n") if raw.strip())
    recs = records_of(path)
    if expected == 0:  # an empty file is one problem, not silence
        assert [str(r) for r in recs] == [f"{path}: no records in this file (check that it is the file you meant)"]
        return
    assert len(recs) == expected
    for r in recs:
        assert isinstance(r, Article | Problem)
        if isinstance(r, Problem):
            assert r.path == str(path) and r.line is not None and str(r)


@PROPS
@given(st.lists(st.lists(any_text, min_size=3, max_size=3), max_size=15))
def test_csv_reader_one_record_per_row(tmp_path, rows):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", "title", "text"])
    w.writerows(rows)
    path = tmp_path / "in.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    recs = records_of(path)
    expected = sum(1 for r in rows if any(c.strip() for c in r))
    assert len(recs) == max(expected, 1)  # no row at all: one "no records" problem
    assert all(isinstance(r, Article | Problem) for r in recs)


@PROPS
@given(st.one_of(st.binary(max_size=200), any_text.map(str.encode)))
def test_text_file_reader_never_crashes(tmp_path, raw):
    path = tmp_path / "page.txt"
    path.write_bytes(raw)
    recs = records_of(path)
    assert len(recs) == 1 and isinstance(recs[0], Article | Problem)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(any_text)
def test_html_reader_never_crashes(tmp_path, text):
    path = tmp_path / "page.html"
    path.write_text(f"<html><head><title>{text}</title></head><body><p>{text}</p></body></html>", encoding="utf-8")
    recs = records_of(path)
    assert len(recs) == 1 and isinstance(recs[0], Article | Problem)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(line, min_size=1, max_size=20))
def test_every_record_is_stored_or_reported(tmp_path_factory, lines):
    folder = tmp_path_factory.mktemp("prop")
    path = folder / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with Archive(folder / "store", embedder=HashEmbedder()) as a:
        report = a.add_paths([path], on_error="skip")
        stored = a.db.count()
    read = max(1, sum(1 for raw in path.read_bytes().split(b"\n") if raw.strip()))  # an empty file: one problem
    assert report.read == read == (report.added + report.updated + report.unchanged + report.repeated
                                   + len(report.problems))
    assert stored == report.added
