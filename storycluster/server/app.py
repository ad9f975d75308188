"""The HTTP API (FastAPI): related lists per article or for posted text, groups, incremental adds and
deletes, an article page and an embeddable widget. OpenAPI at ``/docs``.

Errors are JSON: ``{"error": {"status": 404, "message": "...", ...}}``. Limits: request bodies over
``max_body_bytes`` get 413, ``k`` over ``max_k`` 422. With a token set, writes need
``Authorization: Bearer TOKEN``.
"""


import hashlib
import hmac
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import InputError, NotFoundError, StoreError
from ..ranking import RelatedOptions, parse_list
from .backend import Backend
from .pages import WIDGET_JS, article_page

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
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _too_large(self.max_bytes)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await _too_large(self.max_bytes)(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def _too_large(limit: int) -> JSONResponse:
    return _error(413, f"request body over the {limit:,}-byte limit; send smaller batches")


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message, **extra}}, status_code=status)


def create_app(backend: Backend, token: str | None = None, cors_origins: list[str] | None = None,
               max_body_bytes: int = MAX_BODY_BYTES, cache_seconds: int = 60) -> FastAPI:
    """The ASGI app over a backend. ``token``: required (as a bearer token) for writes when set;
    ``cache_seconds``: the max-age that GET answers allow caches (revalidated by ETag after that)."""
    app = FastAPI(title="storycluster", summary="Duplicate and related news stories across languages",
                  version="1", docs_url="/docs")
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.state.backend = backend

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, e: NotFoundError) -> JSONResponse:
        return _error(404, str(e))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, e: HTTPException) -> JSONResponse:
        return _error(e.status_code, str(e.detail))

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
        return _error(503, str(e))

    @app.exception_handler(ValueError)
    async def bad_value(_: Request, e: ValueError) -> JSONResponse:
        return _error(422, str(e))

    def writer(authorization: Annotated[str | None, Header()] = None) -> Backend:
        if not backend.writable:
            raise HTTPException(405, "this server answers from a read-only backend; write to the store instead")
        if token is not None:
            given = (authorization or "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), token.encode()):
                raise HTTPException(401, "a valid 'Authorization: Bearer TOKEN' header is needed to write")
        return backend

    def options(since: str | None = None,
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

    def cached(request: Request, compute: Callable[[], Any], html: bool = False) -> Response:
        """A GET answer with an ETag of the data's generation and the URL: a cache or a browser revalidates
        with If-None-Match and gets 304 until an add or a regrouping changes what the API would say.
        The answer is returned as a response directly (the response model documents it, unvalidated)."""
        key = f"{backend.generation()} {request.url.path}?{request.url.query}"
        tag = 'W/"' + hashlib.blake2b(key.encode(), digest_size=8).hexdigest() + '"'
        headers = {"ETag": tag, "Cache-Control": f"public, max-age={cache_seconds}"}
        if tag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
            return Response(status_code=304, headers=headers)
        return HTMLResponse(compute(), headers=headers) if html else JSONResponse(compute(), headers=headers)

    @app.get("/health")
    def health() -> dict:
        return backend.health()

    @app.get("/articles/{article_id}/related", response_model=RelatedList)
    def related(request: Request, article_id: str, opts: Annotated[RelatedOptions, Depends(options)],
                k: Annotated[int, Query(ge=1, le=MAX_K)] = 10) -> Response:
        """Related articles of a stored article; copies of one story collapse into one entry with ``also_in``."""
        return cached(request, lambda: backend.related(article_id, k, opts))

    @app.post("/related", response_model=RelatedList)
    def related_text(q: TextQuery) -> Response:
        """Related articles for a text that is not stored."""
        opts = RelatedOptions(since=q.since, max_age_days=q.max_age_days, lang=None,
                              exclude_ids=parse_list(q.exclude), exclude_sources=parse_list(q.exclude_source),
                              per_source=q.per_source, diversity=q.diversity)
        opts.earliest()
        return JSONResponse(backend.related_text(q.title, q.text, q.lang, q.k, opts))

    @app.post("/articles")
    def add(rows: Annotated[list[Any], Body(description="a list of article objects (id, title, text, url, "
                                                        "source, published, lang)")],
            target: Annotated[Backend, Depends(writer)]) -> dict:
        """Add or update articles; all are checked first, and one bad record rejects the batch (422)."""
        return target.add(rows)

    @app.delete("/articles/{article_id}")
    def delete(article_id: str, target: Annotated[Backend, Depends(writer)]) -> dict:
        if not target.remove(article_id):
            raise NotFoundError(f"no article with id '{article_id}'")
        return {"removed": article_id}

    @app.get("/groups")
    def groups(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               offset: Annotated[int, Query(ge=0)] = 0) -> Response:
        """Groups of two or more articles, largest first."""
        return cached(request, lambda: backend.groups(limit, offset))

    @app.get("/groups/{group_id}")
    def group(request: Request, group_id: str) -> Response:
        return cached(request, lambda: backend.group(group_id))

    @app.get("/articles/{article_id}.json")
    def article_json(request: Request, article_id: str) -> Response:
        return cached(request, lambda: backend.article(article_id))

    @app.get("/articles/{article_id}", response_class=HTMLResponse)
    def page(request: Request, article_id: str, k: Annotated[int, Query(ge=1, le=MAX_K)] = 10) -> Response:
        """The article and its related list, as a page (right to left for Arabic)."""
        return cached(request, lambda: article_page(backend.article(article_id), k), html=True)

    @app.get("/widget.js")
    def widget() -> Response:
        return Response(WIDGET_JS, media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=300"})

    return app
