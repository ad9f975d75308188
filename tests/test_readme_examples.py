"""The README's output examples are what the seed store gives: each quoted value, in the order quoted."""

import json
import re

from typer.testing import CliRunner

from storycluster.cli import app

from .conftest import ROOT


def _block(readme: str, after: str) -> str:
    start = readme.index(after)
    return readme[readme.index("```json", start) + 7:readme.index("```", readme.index("```json", start) + 7)]


def test_readme_dedup_and_related_examples(seed_store):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    run = CliRunner()

    def output(*args: str) -> dict:
        r = run.invoke(app, [*args, "--format", "json", "--store", str(seed_store)])
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)

    block = _block(readme, "`dedup --format json`:")
    gid, rep, size = re.search(r'"group": "(\w+)", "representative": "([^"]+)", "size": (\d+)', block).groups()
    dedup = output("dedup")
    group = next(g for g in dedup["groups"] if g["group"] == gid)
    assert (group["representative"], group["size"]) == (rep, int(size))
    quoted = re.findall(r'\{"id": "([^"]+)", "score": ([0-9.]+), "tier": "(\w+)", "via": "(\w+)"', block)
    assert len(quoted) >= 2
    assert [(m["id"], m["score"], m["tier"], m["via"]) for m in group["members"][:len(quoted)]] == \
        [(i, float(s), t, v) for i, s, t, v in quoted]
    assert re.search(r'"singletons": \["([^"]+)"', block).group(1) in dedup["singletons"]

    block = _block(readme, "`related --format json`:")
    query = re.search(r'"query": "([^"]+)"', block).group(1)
    first = output("related", query)["related"][0]
    i, score, tier = re.search(r'"related": \[\{"id": "([^"]+)", "score": ([0-9.]+), "tier": "(\w+)"', block).groups()
    assert (first["id"], round(first["score"], 2), first["tier"]) == (i, float(score), tier)
    also = re.findall(r'\{"id": "([^"]+)", "source": (null|"[^"]+"), "url": null\}', block)
    assert [(a["id"], a["source"]) for a in first["also_in"][:len(also)]] == [(a, json.loads(s)) for a, s in also]
    published, lang = re.search(r'"published": "([^"]+)", "lang": "(\w+)"', block).groups()
    assert (first["published"], first["lang"]) == (published, lang)
