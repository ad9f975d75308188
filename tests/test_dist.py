"""dedup-dist on a local Ray (ray.init(num_cpus=2), actors of half a CPU), run by `make test` inside a fresh
network namespace that has only loopback (tests/isolated.sh): the same groups as the single-machine
store on seeds/ and on ECB+, bad records reported, the IVF-list graph, the CLI, and nothing listening on
a non-loopback address."""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from storycluster import Archive

from .conftest import ECB, SEEDS

pytestmark = pytest.mark.ray
ray = pytest.importorskip("ray")



def _interfaces() -> list[str]:
    """Network interfaces of this process's namespace (/proc/net is per namespace; /sys/class/net is not)."""
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    return sorted(line.split(":", 1)[0].strip() for line in lines)


def _listening() -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Local addresses of every listening TCP socket in this network namespace (/proc/net/tcp, tcp6)."""
    out = []
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # LISTEN
                continue
            raw = bytes.fromhex(fields[1].rsplit(":", 1)[0])
            # the kernel prints each 32-bit word in host (little-endian) order
            words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            addr = ipaddress.ip_address(words)
            out.append(addr.ipv4_mapped or addr if isinstance(addr, ipaddress.IPv6Address) else addr)
    return out


def _loopback_only(addr) -> bool:
    """Loopback, or the wildcard address: in a namespace whose only interface is `lo`, that is loopback too."""
    return addr.is_loopback or addr.is_unspecified


@pytest.fixture(scope="module")
def local_ray():
    if _interfaces() != ["lo"]:
        pytest.fail(f"network interfaces {_interfaces()}: run the Ray tests in their own namespace "
                    "(tests/isolated.sh .venv/bin/python -m pytest -m ray, as `make test` does)")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    session = Path(ray._private.worker._global_node.get_session_dir_path())
    try:
        yield
        listening = _listening()
        assert listening, "Ray should be listening (on loopback)"
        assert all(_loopback_only(a) for a in listening), listening
        assert _interfaces() == ["lo"]
    finally:
        ray.shutdown()
        shutil.rmtree(session, ignore_errors=True)


def _single(paths: list[Path], store: Path) -> dict:
    with Archive(store) as archive:
        archive.add_paths(paths, on_error="skip")
        return archive.dedup()


def _same_groups(a: dict, b: dict, score_tol: float = 2e-3) -> None:
    """Identical groups, ids, representatives, members and tiers; scores equal up to float noise (the
    embedder batches differently)."""
    assert a["singletons"] == b["singletons"]
    assert [g["group"] for g in a["groups"]] == [g["group"] for g in b["groups"]]
    for ga, gb in zip(a["groups"], b["groups"], strict=True):
        assert ga["representative"] == gb["representative"]
        assert [(m["id"], m["tier"], m["duplicate_of"], m["title"], m["lang"]) for m in ga["members"]] == \
            [(m["id"], m["tier"], m["duplicate_of"], m["title"], m["lang"]) for m in gb["members"]]
        assert max(abs(x["score"] - y["score"]) for x, y in zip(ga["members"], gb["members"], strict=True)) <= score_tol


def test_cli_dedup_dist(tmp_path) -> None:
    """The command itself, in its own process (its own local Ray, before the module's starts), with Parquet
    input."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(x) for x in SEEDS.read_text(encoding="utf-8").splitlines()]
    fields = ["id", "title", "text", "url", "source", "published", "lang"]
    pq.write_table(pa.table({**{f: [r.get(f) for r in rows] for f in fields}, "author": ["x"] * len(rows)}),
                   tmp_path / "seeds.parquet")
    p = subprocess.run([sys.executable, "-m", "storycluster", "dedup-dist", str(tmp_path / "seeds.parquet"),
                        "--out", str(tmp_path / "out"), "--workers", "2"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "read 25 records: 25 articles, 0 skipped; 5 groups" in p.stderr
    assert f"note: {tmp_path / 'seeds.parquet'}: fields not read: 'author' (25 records); " in p.stderr
    assert json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))["notices"] == \
        [line.removeprefix("note: ") for line in p.stderr.splitlines() if line.startswith("note: ")]
    single = _single([SEEDS], tmp_path / "store")
    _same_groups(single, json.loads((tmp_path / "out" / "dedup.json").read_text(encoding="utf-8")))
    bad = subprocess.run([sys.executable, "-m", "storycluster", "dedup-dist", str(tmp_path / "missing.jsonl"),
                          "--out", str(tmp_path / "out2")], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 1 and "missing.jsonl: cannot read" in bad.stderr


def test_seeds_same_groups_as_one_machine(local_ray, tmp_path) -> None:
    from storycluster.dist.ray_engine import dedup_distributed

    report = dedup_distributed([SEEDS], tmp_path / "out")
    single = _single([SEEDS], tmp_path / "store")
    dist = json.loads((tmp_path / "out" / "dedup.json").read_text(encoding="utf-8"))
    _same_groups(single, dist)
    assert dist == single  # on 25 articles even the scores agree to the last digit
    lines = (tmp_path / "out" / "groups.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x) for x in lines] == dist["groups"]
    assert "السوداني" in "".join(lines)  # Arabic as text, not \\u escapes
    assert report.read == report.articles == 25 and not report.problems
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["version"] == 1 and manifest["articles"] == 25

    import pyarrow.parquet as pq

    emb = pq.read_table(tmp_path / "out" / "embeddings")
    assert emb.num_rows == 25 and sorted(emb.column("pos").to_pylist()) == list(range(25))
    assert emb.schema.field("vector").type.list_size == 1024


@pytest.mark.skipif(not ECB.exists(), reason="ECB+ not found: set STORYCLUSTER_ECB to its articles.jsonl")
def test_ecb_same_groups_as_one_machine_and_ivf_lists_close(local_ray, tmp_path) -> None:
    from storycluster.dist.ray_engine import dedup_distributed
    from storycluster.evaluate import bcubed

    exact = dedup_distributed([ECB], tmp_path / "exact", on_error="skip")
    assert exact.read == 982 and exact.articles == 980 and len(exact.problems) == 2  # two empty texts
    single = _single([ECB], tmp_path / "store")
    dist = json.loads((tmp_path / "exact" / "dedup.json").read_text(encoding="utf-8"))
    _same_groups(single, dist)

    # the graph over IVF lists (what archives over 20,000 articles get), forced on ECB+
    dedup_distributed([ECB], tmp_path / "ivf", on_error="skip", exact_below=0)
    ivf = json.loads((tmp_path / "ivf" / "dedup.json").read_text(encoding="utf-8"))

    def labels(result: dict) -> dict[str, str]:
        out = {m["id"]: g["group"] for g in result["groups"] for m in g["members"]}
        out.update({s: s for s in result["singletons"]})
        return out

    f1 = bcubed(labels(ivf), labels(dist))["f1"]
    assert f1 >= 0.97, f1


def test_bad_records_reported_not_dropped(local_ray, tmp_path) -> None:
    from storycluster.dist.ray_engine import dedup_distributed
    from storycluster.errors import InputError

    rows = [json.loads(x) for x in SEEDS.read_text(encoding="utf-8").splitlines()[:6]]
    a = tmp_path / "a.jsonl"
    a.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:4]) + "{not json\n", encoding="utf-8")
    b = tmp_path / "b.jsonl"
    # b: a's first record again, field for field (a repeat: kept once, not a problem); a's second with another title
    b.write_text(json.dumps(rows[0], ensure_ascii=False) + "\n" + json.dumps(rows[5], ensure_ascii=False) + "\n"
                 + json.dumps({"id": "empty", "text": " "}) + "\n"
                 + json.dumps({**rows[1], "title": "another title"}, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="3 bad record"):
        dedup_distributed([a, b], tmp_path / "fail")
    report = dedup_distributed([a, b], tmp_path / "out", on_error="skip")
    assert report.read == 9 and report.articles == 5 and report.repeated == 1 and len(report.problems) == 3
    assert report.read == report.articles + report.repeated + len(report.problems)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["repeated"] == 1
    problems = [json.loads(x)["problem"] for x in (tmp_path / "out" / "problems.jsonl").read_text().splitlines()]
    assert any(p.startswith(f"{a}:5: invalid JSON") for p in problems)
    assert any(p.startswith(f"{b}:4: field 'id': duplicate id '{rows[1]['id']}' (first at {a}:2)") for p in problems)
    assert any(p.startswith(f"{b}:3: field 'text': missing or empty") for p in problems)
    dist = json.loads((tmp_path / "out" / "dedup.json").read_text(encoding="utf-8"))
    ids = [m["id"] for g in dist["groups"] for m in g["members"]] + dist["singletons"]
    assert sorted(ids) == sorted(r["id"] for r in rows[:4] + rows[5:6])
