"""Load on a real server: 1,000 `GET /articles/{id}/related` at concurrency 16 against `storycluster serve`
(uvicorn, a separate process) on loopback over the ECB+ store. Prints p50/p90/p99 latency, throughput and
the error count (expected 0). The client sends no If-None-Match, so no answer comes from a cache.

Run: .venv/bin/python bench/serve_load.py [path/to/ecbplus/articles.jsonl] [--requests 1000] [--concurrency 16]
     [--store DIR]  (an existing ECB+ store; otherwise one is built in a temporary folder, about 30 s)
     [--soak 20000] (instead: that many reads in rounds of 1,000, a POST of 10 changed articles after every
                     second round; prints the server's resident memory after each round)"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

from storycluster import Archive

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def load(base: str, ids: list[str], n: int, concurrency: int, k: int,
               health: bool = False, params: dict | None = None) -> tuple[list[float], int]:
    """``n`` requests from ``concurrency`` clients: related lists of random stored ids (``health``: GET /health,
    the HTTP stack's own cost; ``params``: filters added to the query); latencies and the number of failed
    answers."""
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[str] = asyncio.Queue()
    rng = random.Random(0)
    for _ in range(n):
        queue.put_nowait(rng.choice(ids))

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            article_id = queue.get_nowait()
            t0 = time.perf_counter()
            try:
                if health:
                    r = await client.get("/health")
                    ok = r.status_code == 200
                else:
                    r = await client.get(f"/articles/{article_id}/related", params={"k": k, **(params or {})})
                    ok = r.status_code == 200 and "related" in r.json()
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - t0)
            errors += not ok

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return latencies, errors


WRK_SCRIPT = """
local paths = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n * 7919) %% #paths + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %%d, "seconds": %%f, "errors": %%d, "p50": %%f, "p90": %%f, "p99": %%f}\\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3))
end
"""


def wrk_load(base: str, paths: list[str], seconds: int, concurrency: int) -> dict:
    """The same load from wrk (C, one thread): GETs of ``paths`` (URL-encoded, cycled in a fixed order) for
    ``seconds`` on ``concurrency`` connections. The Python client's own event loop costs about as much CPU
    as the server on this 2-core machine and its queueing shows in the latencies it measures; wrk's does not."""
    import json

    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(WRK_SCRIPT % ", ".join(f'"{p}"' for p in paths))
    try:
        out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s", "-s", fh.name,
                              base], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(fh.name)
    return json.loads(out.strip().splitlines()[-1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def soak(base: str, pid: int, ids: list[str], args: argparse.Namespace) -> None:
    """Reads in rounds of 1,000 with small adds between; the server's RSS after each round."""
    rows = []
    with httpx.Client(base_url=base, timeout=60) as c:
        for n in range(args.soak // 1000):
            asyncio.run(load(base, ids, 1000, args.concurrency, args.k))
            if n % 2 == 1:
                stored = [c.get(f"/articles/{i}.json").json() for i in ids[n:n + 10]]
                batch = [{**a, "text": f"Soak round {n}. {a['text']}"} for a in stored]
                r = c.post("/articles", json=batch, headers={"Authorization": "Bearer soak"})
                assert r.status_code == 200, r.text
            rows.append(((n + 1) * 1000, rss_mb(pid)))
            print(f"{(n + 1) * 1000:>7} reads: RSS {rows[-1][1]:.0f} MB", flush=True)
    print("\n| reads | server RSS (MB) |\n| --- | --- |")
    for reads, mb in rows:
        print(f"| {reads:,} | {mb:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", nargs="?", default=str(ROOT.parent / "shared/data/ecbplus/articles.jsonl"))
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--store", type=Path)
    ap.add_argument("--soak", type=int, default=0)
    ap.add_argument("--client", choices=["httpx", "wrk"], default="wrk" if shutil.which("wrk") else "httpx",
                    help="load generator: wrk (C; apt-get install wrk) when on PATH, else Python's httpx")
    ap.add_argument("--seconds", type=int, default=15, help="length of each wrk run")
    ap.add_argument("--cache-mb", type=float, help="the server's --cache-mb (default: its own default)")
    ap.add_argument("--threads", type=int, help="the server's --threads (default: its own default)")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    store = args.store or Path(tmp.name) / "store"
    if not (store / "config.json").exists():
        print(f"building the store from {args.data} ...", flush=True)
        subprocess.run([sys.executable, "-m", "storycluster.cli", "add", args.data, "--on-error", "skip",
                        "--store", str(store)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with Archive(store, create=False) as archive:
        ids = sorted(i for _, i, _, _ in archive.db.facts())  # the stored ones (ECB+ has 2 empty texts)
        sources = Counter(a.source for a in archive.db.iter_articles() if a.source)
    # filters that leave fewer stories than k above the stored lists' last ones for many articles: those answers
    # are computed on demand
    fallback = {"exclude_source": [s for s, _ in sources.most_common(25)], "per_source": 1}
    if args.soak:
        copy = Path(tmp.name) / "soak"
        shutil.copytree(store, copy, dirs_exist_ok=True)
        store = copy  # the soak writes
    server, base = start(store, *serve_options(args))
    try:
        asyncio.run(load(base, ids, 50, args.concurrency, args.k))  # warm-up
        if args.soak:
            soak(base, server.pid, ids, args)
            return
        if args.client == "wrk":
            wrk_report(base, store, ids, fallback, args)
            return
        t0 = time.perf_counter()
        lat, errors = asyncio.run(load(base, ids, args.requests, args.concurrency, args.k))
        wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        health_lat, health_errors = asyncio.run(load(base, ids, args.requests, args.concurrency, args.k, health=True))
        health_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        f_lat, f_errors = asyncio.run(load(base, ids, args.requests // 4, args.concurrency, args.k, params=fallback))
        f_wall = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait(timeout=30)
    ms = np.array(lat) * 1000
    print("\n| measure | value |\n| --- | --- |")
    print(f"| requests / concurrency | {len(lat)} / {args.concurrency} |")
    print(f"| latency p50 / p90 / p99 | {np.percentile(ms, 50):.1f} / {np.percentile(ms, 90):.1f} / "
          f"{np.percentile(ms, 99):.1f} ms |")
    print(f"| throughput | {len(lat) / wall:.0f} requests/s |")
    print(f"| errors | {errors} |")
    print(f"| GET /health, same server and run | {len(health_lat) / health_wall:.0f} requests/s, p99 "
          f"{np.percentile(np.array(health_lat) * 1000, 99):.1f} ms, {health_errors} errors |")
    print(f"| related throughput / health throughput | {(len(lat) / wall) / (len(health_lat) / health_wall):.0%} |")
    print(f"| related with filters (25 sources excluded, 1 per source: 15% of answers computed on demand) | "
          f"{len(f_lat) / f_wall:.0f} requests/s, p50 / p99 {np.percentile(np.array(f_lat) * 1000, 50):.1f} / "
          f"{np.percentile(np.array(f_lat) * 1000, 99):.1f} ms, {f_errors} errors |")
    print(f"| machine | {os.cpu_count()} CPUs; server: uvicorn, {4 if (os.cpu_count() or 2) >= 4 else os.cpu_count()}"
          " store readers |")


def serve_options(args: argparse.Namespace, cache_mb: float | None = None) -> list[str]:
    """The server's --cache-mb and --threads as this run asks (``cache_mb``: that budget instead)."""
    cache_mb = args.cache_mb if cache_mb is None else cache_mb
    return [*(["--cache-mb", str(cache_mb)] if cache_mb is not None else []),
            *(["--threads", str(args.threads)] if args.threads is not None else [])]


def start(store: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """``storycluster serve`` on a free loopback port, once it answers /health."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "storycluster.cli", "serve", "--store", str(store),
                               "--port", str(port), "--token-env", "SOAK_TOKEN", "--rate-limit", "0", *extra],
                              stderr=subprocess.PIPE, env={**os.environ, "SOAK_TOKEN": "soak"})
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    return server, base


def wrk_report(base: str, store: Path, ids: list[str], fallback: dict, args: argparse.Namespace) -> None:
    """Related lists, /health and filtered lists on the default server (rendered answers kept: after the first
    request for an id, its answer comes from memory), then related lists on a server that keeps none
    (``--cache-mb 0``: every answer read from the stored lists and rendered)."""
    order = random.Random(0).sample(ids, min(len(ids), 20_000))  # wrk's script holds the paths
    quoted = [urllib.parse.quote(i, safe="") for i in order]
    query = urllib.parse.urlencode({"k": args.k})
    related = wrk_load(base, [f"/articles/{i}/related?{query}" for i in quoted], args.seconds, args.concurrency)
    health = wrk_load(base, ["/health"], args.seconds, args.concurrency)
    filtered = urllib.parse.urlencode({"k": args.k, **fallback}, doseq=True)
    slow = wrk_load(base, [f"/articles/{i}/related?{filtered}" for i in quoted], args.seconds, args.concurrency)
    server, bare = start(store, *serve_options(args, cache_mb=0))
    try:
        uncached = wrk_load(bare, [f"/articles/{i}/related?{query}" for i in quoted], args.seconds, args.concurrency)
        uncached_health = wrk_load(bare, ["/health"], args.seconds, args.concurrency)
    finally:
        server.terminate()
        server.wait(timeout=30)

    def rate(r: dict) -> float:
        return r["requests"] / r["seconds"]

    print(f"\n| client: wrk, concurrency {args.concurrency}, {args.seconds} s each | requests/s | p50 | p90 | p99 | errors |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r in (("GET /articles/{id}/related?k=10", related), ("GET /health", health),
                    ("related with filters (25 sources excluded, 1 per source)", slow),
                    ("related, no answers kept (--cache-mb 0)", uncached),
                    ("GET /health, that server", uncached_health)):
        print(f"| {name} | {rate(r):.0f} | {r['p50']:.1f} ms | {r['p90']:.1f} ms | {r['p99']:.1f} ms | {r['errors']} |")
    print(f"| related / health throughput | {rate(related) / rate(health):.0%} | | | | |")
    print(f"| the same, no answers kept | {rate(uncached) / rate(uncached_health):.0%} | | | | |")


if __name__ == "__main__":
    main()
