"""The HTTP API (FastAPI): related lists per article or for posted text, groups, incremental adds and
deletes, an article page and an embeddable widget. OpenAPI at ``/docs``.

Errors are JSON: ``{"error": {"status": 404, "message": "...", ...}}``. Limits: request bodies over
``max_body_bytes`` get 413, ``k`` over ``max_k`` 422. Writes need ``Authorization: Bearer TOKEN`` when a token is
set; without one the API is read-only unless anonymous writes are allowed (a loopback server only, for local
tools). POST bodies must say ``Content-Type: application/json`` (a browser's cross-origin "simple" request cannot).
With ``allowed_hosts``, a request naming another ``Host`` gets 421 (DNS rebinding against a loopback server).
"""


import asyncio
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any

import anyio
import anyio.abc
import anyio.to_thread
import orjson
from fastapi import Body, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import InputError, NotFoundError, StoreError
from ..ranking import RelatedOptions, parse_list
from ..writes import BuildStopped
from .answer_cache import AnswerCache
from .backend import Backend
from .pages import WIDGET_JS, api_page, article_page

MAX_K = 100
MAX_BODY_BYTES = 10_000_000


class AlsoIn(BaseModel):
    id: str
    source: str | None = None
    url: str | None = None


class RelatedEntry(BaseModel):
    id: str
    title: str
    url: str | None = None
    source: str | None = None
    published: str | None = None
    lang: str | None = None
    score: float = Field(description="semantic similarity to the query, 0..1")
    tier: str = Field(description="same_story or related")
    group: str | None = None
    also_in: list[AlsoIn] = Field(description="other members of the entry's group: the same story elsewhere")


class RelatedList(BaseModel):
    query: str | None
    related: list[RelatedEntry]
    note: str | None = Field(None, description="for a text query judged as a headline: what its tiers rest on")


class TextQuery(BaseModel):
    title: str = ""
    text: str = Field(min_length=1)
    lang: str | None = None
    k: int = Field(10, ge=1, le=MAX_K)
    since: str | None = None
    max_age_days: float | None = Field(None, ge=0)
    exclude: list[str] = []
    exclude_source: list[str] = []
    per_source: int | None = Field(None, ge=1)
    diversity: float = Field(0.0, ge=0, le=1)


class BodyLimit:
    """413 for bodies over the cap, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit():
            if int(length) > self.max_bytes:
                await _too_large(self.max_bytes)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        # a streamed (chunked) body: read up to the cap first, then hand it on
        messages: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            messages.append(message)
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await _too_large(self.max_bytes)(scope, receive, send)
                return
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


class HeadAsGet:
    """HEAD on every GET route: the GET answer's status and headers, without its body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "HEAD":
            await self.app(scope, receive, send)
            return

        async def no_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, no_body)


class JsonCors(CORSMiddleware):
    """CORS whose refused preflight answers in the API's error shape (Starlette's is plain text)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 400:
            error = _error(400, f"CORS preflight refused: {bytes(response.body).decode(errors='replace')}")
            return error
        return response


class FastJSON(JSONResponse):
    """An answer rendered by orjson: the bytes of Starlette's encoder (UTF-8 as is, no spaces; tested), ten times
    faster for a related list of large groups (a hundred ``also_in`` entries)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def _too_large(limit: int) -> JSONResponse:
    return _error(413, f"request body over the {limit:,}-byte limit; send smaller batches")


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message, **extra}}, status_code=status)


class HostCheck:
    """421 for a request whose ``Host`` is not one of the allowed names (any port): a page on another site that
    resolves its own name to 127.0.0.1 (DNS rebinding) reaches a loopback server only under that name."""

    def __init__(self, app: ASGIApp, allowed: list[str]) -> None:
        self.app, self.allowed = app, {h.lower() for h in allowed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in self.allowed:
                await _error(421, f"this server does not answer for the host {host[:100]!r}; allow it with "
                                  "serve --allowed-host")(scope, receive, send)
                return
        await self.app(scope, receive, send)


class RateLimit:
    """At most ``per_minute`` POST requests a minute from one client address (a token bucket each; 429 with
    ``Retry-After`` beyond): posted texts and batches are the expensive requests. Behind a reverse proxy every
    client has the proxy's address, so limit there instead (and turn this off)."""

    def __init__(self, app: ASGIApp, per_minute: int) -> None:
        self.app, self.rate, self.burst = app, per_minute / 60.0, float(max(1, per_minute))
        self.buckets: dict[str, tuple[float, float]] = {}  # client → (tokens, at)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST":
            client = (scope.get("client") or ("?", 0))[0]
            now = time.monotonic()
            tokens, at = self.buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens < 1.0:
                wait = max(1, int((1.0 - tokens) / self.rate + 0.999))
                response = _error(429, f"too many requests from this address; retry in {wait} s")
                response.headers["Retry-After"] = str(wait)
                await response(scope, receive, send)
                return
            self.buckets[client] = (tokens - 1.0, now)
            if len(self.buckets) > 100_000:  # forget the idle ones (memory stays bounded)
                self.buckets = {c: v for c, v in self.buckets.items() if now - v[1] < 60}
        await self.app(scope, receive, send)


#: headers on every answer: no MIME sniffing, no referrer leaks to the linked outlets
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "strict-origin-when-cross-origin"}
#: the article page: its own script and styles only, talks to this server only, framed only by itself
PAGE_POLICY = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
               "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'")


class Guard:
    """What every answer gets, as plain ASGI (Starlette's ``BaseHTTPMiddleware`` adds a task and a stream to
    every request): the security headers (and the page policy on HTML), a 415 for a POST body that is
    not JSON, and a 503 with ``Retry-After`` when the answer has not come within ``request_seconds`` (the
    work itself runs on to its end on its thread)."""

    def __init__(self, app: ASGIApp, request_seconds: float | None = None) -> None:
        self.app, self.request_seconds = app, request_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", PAGE_POLICY)
            await send(message)

        if scope.get("method") == "POST":
            kind = dict(scope.get("headers") or []).get(b"content-type", b"").decode("latin-1")
            if kind.split(";")[0].strip().lower() != "application/json":
                await _error(415, "POST bodies must be JSON: send 'Content-Type: application/json'")(
                    scope, receive, with_headers)
                return
        if self.request_seconds is None:
            await self.app(scope, receive, with_headers)
            return
        try:
            await asyncio.wait_for(self.app(scope, receive, with_headers), self.request_seconds)
        except TimeoutError:
            if started:  # the answer has begun: it cannot become a 503
                raise
            response = _error(503, f"no answer within {self.request_seconds:g} s; retry later")
            response.headers["Retry-After"] = "10"
            await response(scope, receive, with_headers)


def create_app(backend: Backend, token: str | None = None, cors_origins: list[str] | None = None,
               max_body_bytes: int = MAX_BODY_BYTES, cache_seconds: int = 60, anonymous_writes: bool = False,
               allowed_hosts: list[str] | None = None, post_per_minute: int = 0,
               request_seconds: float | None = None, read_threads: int | None = 1, cache_mb: float = 64) -> FastAPI:
    """The ASGI app over a backend. ``token``: required (as a bearer token) for writes; without one, writes are
    refused unless ``anonymous_writes``; ``allowed_hosts``: the ``Host`` names answered (None: any);
    ``post_per_minute``: POST requests a client address may make a minute (0: no limit); ``request_seconds``: an
    answer not ready by then is a 503 with ``Retry-After`` (the work itself runs to its end on its thread);
    ``cache_seconds``: the max-age that GET answers allow caches (revalidated by ETag after that);
    ``read_threads``: threads answering reads (writes run on one of their own; None: as many as suit the
    backend now, :meth:`Backend.read_threads`, looked at again after each write); ``cache_mb``: rendered GET
    answers kept in memory by ETag key (:mod:`.answer_cache`; 0: none).

    A write answers once its groups are committed; related lists that its full regrouping left pending (a large
    store) are built afterwards on the write lane (:meth:`Backend.build_lists`), answers computed meanwhile.
    A server that stops during that build leaves them pending for the next write."""
    lanes: dict[str, anyio.CapacityLimiter] = {}
    answers = AnswerCache(int(cache_mb * 1e6))
    after_writes: list[anyio.abc.TaskGroup] = []
    stopping = threading.Event()

    async def fit_read_threads() -> None:
        if read_threads is None:
            n = await anyio.to_thread.run_sync(backend.read_threads)
            anyio.to_thread.current_default_thread_limiter().total_tokens = n

    async def after_write() -> None:
        """After a write has answered: the read threads for what it left, then the lists it left pending."""
        try:
            await fit_read_threads()
            if await anyio.to_thread.run_sync(partial(backend.build_lists, stopping.is_set), limiter=lanes["write"]):
                await fit_read_threads()
        except BuildStopped:
            pass
        except Exception as e:  # noqa: BLE001 - a server keeps answering; the next write builds them
            logging.getLogger("uvicorn.error").error(
                "storycluster: the related lists' build stopped (%s); they stay pending, answers are computed, and "
                "the next write builds them", e)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # reads (every sync route) share ``read_threads`` threads (serve: one where answers come from stored
        # lists, Python under the GIL, where more threads taking turns answered fewer requests, later; one per
        # core where they are computed; docs/performance.md). Writes have their own thread, so a long add never
        # holds the reads up.
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = read_threads if read_threads is not None else backend.read_threads()
        lanes["write"] = anyio.CapacityLimiter(1)
        async with anyio.create_task_group() as tasks:
            after_writes.append(tasks)
            try:
                yield
            finally:
                stopping.set()  # a build under way stops at its next part

    app = FastAPI(title="storycluster", summary="Duplicate and related news stories across languages",
                  version="1", docs_url=None, redoc_url=None, lifespan=lifespan)
    if cors_origins:
        app.add_middleware(JsonCors, allow_origins=cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    if post_per_minute > 0:
        app.add_middleware(RateLimit, per_minute=post_per_minute)
    app.add_middleware(HeadAsGet)
    if allowed_hosts is not None:
        app.add_middleware(HostCheck, allowed=allowed_hosts)

    app.add_middleware(Guard, request_seconds=request_seconds)  # outermost: every answer gets its headers
    app.state.backend = backend
    app.state.answers = answers

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, e: NotFoundError) -> JSONResponse:
        return _error(404, str(e))

    @app.exception_handler(StarletteHTTPException)  # FastAPI's HTTPException is one; unknown routes, 405 too
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        message = str(e.detail)
        if e.status_code in (404, 405) and message in ("Not Found", "Method Not Allowed"):  # the router's own
            what = "no such route" if e.status_code == 404 else "method not allowed"
            message = f"{what}: {request.method} {request.url.path}; the routes are listed at /docs"
        response = _error(e.status_code, message)
        response.headers.update(e.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        details = [{"where": ".".join(str(x) for x in err.get("loc", ())), "message": err.get("msg", "")}
                   for err in e.errors()]
        summary = "; ".join(f"{d['where']}: {d['message']}" for d in details[:5])
        return _error(422, f"invalid request: {summary}", details=details)

    @app.exception_handler(InputError)
    async def bad_article(_: Request, e: InputError) -> JSONResponse:
        p = e.problem
        return _error(422, str(e), where=p.path, field=p.field, hint=p.hint)

    @app.exception_handler(StoreError)
    async def store_busy(_: Request, e: StoreError) -> JSONResponse:
        response = _error(503, str(e))
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(ValueError)
    async def bad_value(_: Request, e: ValueError) -> JSONResponse:
        return _error(422, str(e))

    async def writer(authorization: Annotated[str | None, Header()] = None) -> Backend:
        if not backend.writable:
            raise HTTPException(405, "this server answers from a read-only backend; write to the store instead")
        if token is None:
            if not anonymous_writes:
                raise HTTPException(403, "this server is read-only: start it with --token-env VAR to accept "
                                         "writes with that bearer token")
            return backend
        scheme, _, given = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPException(401, "a valid 'Authorization: Bearer TOKEN' header is needed to write",
                                headers={"WWW-Authenticate": 'Bearer realm="storycluster"'})
        return backend

    async def options(since: str | None = None,  # async: parsed on the event loop, not on a worker thread
                      max_age_days: Annotated[float | None, Query(ge=0)] = None,
                      past_only: bool = False,
                      lang: str | None = None,
                      exclude: Annotated[list[str] | None, Query(description="ids, repeated or comma-separated")] = None,
                      exclude_source: Annotated[list[str] | None, Query()] = None,
                      per_source: Annotated[int | None, Query(ge=1)] = None,
                      diversity: Annotated[float, Query(ge=0, le=1)] = 0.0) -> RelatedOptions:
        options = RelatedOptions(since=since, max_age_days=max_age_days, past_only=past_only, lang=lang,
                                 exclude_ids=parse_list(exclude), exclude_sources=parse_list(exclude_source),
                                 per_source=per_source, diversity=diversity)
        options.earliest()  # a bad date is a 422 here, not later
        return options

    def cached(request: Request, compute: Callable[[], Any], html: bool = False,
               listed: tuple[str, Callable[[], Any]] | None = None, clock: bool = False) -> Response:
        """A GET answer with an ETag of the data's generation and the URL: a cache or a browser revalidates
        with If-None-Match and gets 304 until an add or a regrouping changes what the API would say.
        ``listed``: (an article's stored list version, the answer from that list or None): when the list
        answers, the tag names the list's version instead, which only the writes that change the list change.
        ``clock``: the answer also depends on the time (``max_age_days``): the tag names the minute too (as
        stale as ``Cache-Control`` allows, not until the next write).
        The answer is returned as a response directly (the response model documents it, unvalidated)."""
        with backend.snapshot():  # the tag and the answer from one state, one reader taken
            if listed is not None and (got := from_list(request, *listed)) is not None:
                return got
            generation = backend.generation() + (f" @{int(time.time() // 60)}" if clock else "")
            headers = tagged(request, generation)
            if headers["ETag"] in if_none_match(request):
                return Response(status_code=304, headers=headers)
            if (kept := answers.get(memo_key(request), generation)) is not None:
                return Response(kept[0], media_type=kept[1], headers=headers)
            body = compute()
        response = HTMLResponse(body, headers=headers) if html else FastJSON(body, headers=headers)
        answers.put(memo_key(request), generation, bytes(response.body), response.media_type or "application/json")
        return response

    def from_list(request: Request, list_version: str, answer: Callable[[], Any]) -> Response | None:
        """The answer from an article's stored list at ``list_version`` (304, kept or rendered), or None when the
        list cannot give it (``answer()`` returns None)."""
        version = f"list {list_version}"
        headers = tagged(request, version)
        if headers["ETag"] in if_none_match(request):
            return Response(status_code=304, headers=headers)
        memo = f"list {memo_key(request)}"
        if (kept := answers.get(memo, version)) is not None:
            return Response(kept[0], media_type=kept[1], headers=headers)
        if (got := answer()) is None:
            return None
        rendered = FastJSON(got, headers=headers)
        answers.put(memo, version, bytes(rendered.body), "application/json", generation=False)
        return rendered

    def if_none_match(request: Request) -> list[str]:
        return [t.strip() for t in request.headers.get("if-none-match", "").split(",")]

    def memo_key(request: Request) -> str:
        # the path as sent: a page's relative links depend on it (an id's "/" raw or percent-encoded)
        return f"{request.url.path}?{request.url.query} {request.scope.get('raw_path', b'').decode('latin-1')}"

    def tagged(request: Request, version: str) -> dict[str, str]:
        key = f"{version} {request.url.path}?{request.url.query}"
        tag = 'W/"' + hashlib.blake2b(key.encode(), digest_size=8).hexdigest() + '"'
        return {"ETag": tag, "Cache-Control": f"public, max-age={cache_seconds}"}

    @app.get("/health")
    def health() -> dict:
        return backend.health()

    def page_of(request: Request, article_id: str, k: int) -> Response:
        # the page's script is ../widget.js seen from the URL as the browser sent it (an id's "/" may be raw)
        depth = request.scope.get("raw_path", request.url.path.encode()).split(b"?")[0].count(b"/") - 1
        return cached(request, lambda: article_page(backend.article(article_id), k, "../" * max(depth, 1)),
                      html=True)

    def or_page(request: Request, shorter: Callable[[], Response], full_id: str) -> Response:
        """``shorter()``; when its id is not stored but ``full_id`` (the whole path) is, that article's page."""
        try:
            return shorter()
        except NotFoundError as missing:
            try:
                return page_of(request, full_id, 10)
            except NotFoundError:
                raise missing from None

    # ids may hold "/" (a folder import's paths): every article route takes the rest of the path as the id
    @app.get("/articles/{article_id:path}/related", response_model=RelatedList)
    async def related(request: Request, article_id: str, opts: Annotated[RelatedOptions, Depends(options)],
                      k: Annotated[int, Query(ge=1, le=MAX_K)] = 10) -> Response:
        """Related articles of a stored article; copies of one story collapse into one entry with ``also_in``."""
        clock = opts.max_age_days is not None  # answers that age with the time: not by the list's version

        def listed() -> tuple[str, Callable[[], Any]] | None:
            version = None if clock else backend.list_version(article_id)
            return None if version is None else (version, lambda: backend.related_listed(article_id, k, opts))

        # an answer from a stored list is a few small reads: made here on the event loop, not handed to a
        # thread (the hand-over cost as much as the answer); anything else (a computed answer, a miss, a
        # reader not free at once) goes to a read thread. While a read thread works, answers queue behind it
        # in order: answered here meanwhile, they would take its turns at the GIL and its answers would wait
        list_short = False  # the stored list was read and cannot give this answer: it is computed
        if not anyio.to_thread.current_default_thread_limiter().borrowed_tokens:
            with backend.quick_snapshot() as ready:
                try:
                    if ready and (stored := listed()) is not None:
                        if (got := from_list(request, *stored)) is not None:
                            return got
                        list_short = True
                except NotFoundError:
                    pass  # the thread's path says so, or finds the page of an id that holds "/related"

        def answer() -> Response:
            with backend.snapshot():  # the list's version and its answer from one state
                return cached(request, lambda: backend.related(article_id, k, opts),
                              listed=None if list_short else listed(), clock=clock)

        return await anyio.to_thread.run_sync(partial(or_page, request, answer, f"{article_id}/related"))

    @app.post("/related", response_model=RelatedList)
    def related_text(q: TextQuery) -> Response:
        """Related articles for a text that is not stored."""
        opts = RelatedOptions(since=q.since, max_age_days=q.max_age_days, lang=None,
                              exclude_ids=parse_list(q.exclude), exclude_sources=parse_list(q.exclude_source),
                              per_source=q.per_source, diversity=q.diversity)
        opts.earliest()
        return FastJSON(backend.related_text(q.title, q.text, q.lang, q.k, opts))

    @app.post("/articles")
    async def add(rows: Annotated[list[Any], Body(description="a list of article objects (id, title, text, url, "
                                                              "source, published, lang)")],
                  target: Annotated[Backend, Depends(writer)]) -> dict:
        """Add or update articles; all are checked first, and one bad record rejects the batch (422)."""
        report = await anyio.to_thread.run_sync(partial(target.add, rows), limiter=lanes["write"])
        after_writes[0].start_soon(after_write)
        return report

    @app.delete("/articles/{article_id:path}")
    async def delete(article_id: str, target: Annotated[Backend, Depends(writer)]) -> dict:
        if not await anyio.to_thread.run_sync(partial(target.remove, article_id), limiter=lanes["write"]):
            raise NotFoundError(f"no article with id '{article_id}'")
        after_writes[0].start_soon(after_write)
        return {"removed": article_id}

    @app.get("/groups")
    def groups(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               offset: Annotated[int, Query(ge=0, le=2 ** 62)] = 0) -> Response:
        """Groups of two or more articles, largest first."""
        return cached(request, lambda: backend.groups(limit, offset))

    @app.get("/groups/{group_id}")
    def group(request: Request, group_id: str) -> Response:
        return cached(request, lambda: backend.group(group_id))

    @app.get("/articles/{article_id:path}.json")
    def article_json(request: Request, article_id: str) -> Response:
        """A stored article as JSON (an id that itself ends in .json, when the shorter one is not an id: its page)."""
        return or_page(request, lambda: cached(request, lambda: backend.article(article_id)), f"{article_id}.json")

    @app.get("/articles/{article_id:path}", response_class=HTMLResponse)
    def page(request: Request, article_id: str, k: Annotated[int, Query(ge=1, le=MAX_K)] = 10) -> Response:
        """The article and its related list, as a page (right to left for Arabic)."""
        return page_of(request, article_id, k)

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs() -> HTMLResponse:
        """The API's routes from its OpenAPI description, as a page that needs no network (the full description
        is at /openapi.json for tools)."""
        return HTMLResponse(api_page(app.openapi()))

    @app.get("/widget.js")
    def widget() -> Response:
        return Response(WIDGET_JS, media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=300"})

    return app
