"""`rnnkit serve`: a JSON API and a one-page web app for a trained model (Starlette + uvicorn).

    GET  /                 the web page (static/index.html)
    GET  /health           {"status": "ok"}
    GET  /model            the model's description and the server's limits
    POST /generate         {"start_text": ..., "length": ...} -> {"samples": [...]}
    POST /generate/stream  the same body -> text/event-stream of {"text": piece} events
    POST /lines            {"count": 10, "novel": true, ...} -> {"lines": [...]}: list mode

Sampling is CPU-bound torch code, so it runs in worker threads; the event loop only parses
requests and moves text. At most `max_concurrent` generations run at once; more get 429.

With a token, every request but GET / needs `Authorization: Bearer <token>` (else 401); the
page takes the token from its address (`/#token=...`) or asks for it. A --host beyond this
machine needs a token or an explicit --no_token.
"""

from __future__ import annotations

import asyncio
import copy
import hmac
import ipaddress
import json
import logging
import math
import socket
import sys
import threading
from dataclasses import asdict, dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..errors import ConfigError, RnnkitError
from ..text.vocab import UnknownTokensError
from .page import page_with_style

if TYPE_CHECKING:  # torch loads on first use, so `rnnkit serve` refuses bad flags at once
    from ..sampling.generator import Generator, SampleOptions

MAX_BODY_BYTES = 64 * 1024
MAX_LINES = 100  # lines per POST /lines request
log = logging.getLogger("rnnkit.serve.app")


@dataclass(frozen=True)
class Limits:
    max_length: int = 2000  # tokens per sample
    max_concurrent: int = 4  # generations running at once
    max_samples: int = 8  # num_samples per request
    max_start_chars: int = 10_000


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field

    def response(self) -> JSONResponse:
        body = {"error": self.message} if self.field is None else {"error": self.message, "field": self.field}
        return JSONResponse(body, status_code=self.status)


class Slots:
    """A non-blocking count of running generations (touched only on the event loop)."""

    def __init__(self, limit: int):
        self.limit, self.in_use = limit, 0

    def lease(self) -> "Lease | None":
        if self.in_use >= self.limit:
            return None
        self.in_use += 1
        return Lease(self)


class Lease:
    """One held slot. Releasing twice is harmless, so every way out may release it."""

    def __init__(self, slots: Slots):
        self.slots, self.held, self.thread_started = slots, True, False

    def release(self) -> None:
        if self.held:
            self.held = False
            self.slots.in_use -= 1


def create_app(generator: Generator, token: str | None = None, **limits: Any) -> Starlette:
    """The ASGI app. A token guards every request but GET / (BearerToken).

    Other keyword arguments override Limits fields (max_length, max_concurrent, ...).
    """
    if token is not None:
        check_token(token)
    lim = checked_limits(limits)
    slots = Slots(lim.max_concurrent)
    page = the_page(token)
    training = TrainingLines(generator.meta)
    model_info = dict(generator.describe(), limits=asdict(lim),
                      lines={"max_count": MAX_LINES, "novel": training.missing is None, "novel_note": training.missing})

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "busy": slots.in_use, "max_concurrent": lim.max_concurrent})

    async def model(request: Request) -> Response:
        return JSONResponse(model_info)

    async def generate(request: Request) -> Response:
        opts = parse_options(await read_json(request), lim, generator, stream=False)
        # a shallow copy per request: Generator keeps per-call RNG state on itself
        return await run_leased(slots, lim, lambda: {"samples": copy.copy(generator).generate(opts)})

    async def generate_stream(request: Request) -> Response:
        opts = parse_options(await read_json(request), lim, generator, stream=True)
        lease = slots.lease()
        if lease is None:
            return busy(lim)
        return LeasedStreamingResponse(
            sse_events(copy.copy(generator), opts, lease),
            lease,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def lines(request: Request) -> Response:
        wanted = parse_lines(await read_json(request), lim, generator, training)
        return await run_leased(slots, lim, write_lines, copy.copy(generator), wanted, training)

    routes = [
        Route("/", index),
        Route("/health", health),
        Route("/model", model),
        Route("/generate", generate, methods=["POST"]),
        Route("/generate/stream", generate_stream, methods=["POST"]),
        Route("/lines", lines, methods=["POST"]),
    ]
    handlers = {ApiError: _api_error, HTTPException: _http_error, Exception: _internal_error}
    middleware = [] if token is None else [Middleware(BearerToken, token=token)]
    return Starlette(routes=routes, exception_handlers=handlers, middleware=middleware)


def checked_limits(limits: dict[str, Any]) -> Limits:
    lim = Limits(**limits)
    for name, value in asdict(lim).items():
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"--{name} must be a positive whole number, got {value}")
    return lim


def the_page(token: str | None) -> str:
    """static/index.html with its style, and the token script when a token guards the API."""
    page = page_with_style((resources.files("rnnkit.serve") / "static" / "index.html").read_text(encoding="utf-8"))
    return page if token is None else page.replace("<script>", TOKEN_SCRIPT + "<script>", 1)


async def run_leased(slots: Slots, lim: Limits, fn, *args) -> Response:
    """fn(*args) in a worker thread holding one of the generation slots; 429 when none is free."""
    lease = slots.lease()
    if lease is None:
        return busy(lim)
    try:
        return JSONResponse(await run_in_threadpool(fn, *args))
    finally:
        lease.release()


async def _api_error(request: Request, exc: ApiError) -> Response:
    return exc.response()


async def _http_error(request: Request, exc: HTTPException) -> Response:
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)


# ---- the token -----------------------------------------------------------------------------
PUBLIC_PATHS = frozenset({"/"})  # the page holds no secrets and must load before it knows the token

# Goes before the page's own script when a token is set. The token comes from the address's
# #token=... (a fragment never reaches the server or its logs) or a prompt, and rides on
# every fetch the page makes.
TOKEN_SCRIPT = """<script>
"use strict";
(() => {
  const match = /(?:^|&)token=([^&]*)/.exec(location.hash.slice(1));
  const token = match ? decodeURIComponent(match[1]) : (prompt("This rnnkit server needs its token:") || "");
  const plainFetch = window.fetch;
  window.fetch = (url, init = {}) => {
    const headers = new Headers(init.headers);
    headers.set("Authorization", `Bearer ${token}`);
    return plainFetch(url, { ...init, headers });
  };
})();
</script>
"""


class BearerToken:
    """ASGI middleware: 401 for any request but the page without `Authorization: Bearer <token>`."""

    def __init__(self, app, token: str):
        self.app, self.token = app, token.encode("ascii")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] not in PUBLIC_PATHS and not self.allows(scope):
            body = {"error": "missing or wrong token: send the header 'Authorization: Bearer <token>'"}
            response = JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def allows(self, scope) -> bool:
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, credentials = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self.token)


def check_token(token: str) -> None:
    if not (token and token.isascii() and token.isprintable() and " " not in token):
        raise ConfigError("--token must be non-empty printable ASCII without spaces (it travels in an HTTP header)")


def check_token_for_host(host: str, token: str | None, no_token: bool) -> None:
    """Refuse to serve beyond this machine without a token, unless no_token says so knowingly."""
    if token is not None and no_token:
        raise ConfigError("give --token (or RNNKIT_TOKEN) or --no_token, not both")
    if token is not None:
        check_token(token)
    elif not no_token and not _is_loopback(host):
        raise ConfigError(
            f"--host {host} exposes the server beyond this machine; give --token SECRET "
            "(clients send 'Authorization: Bearer SECRET'), set RNNKIT_TOKEN=SECRET, or pass --no_token"
        )


def busy(lim: Limits) -> JSONResponse:
    return JSONResponse(
        {"error": f"busy: {lim.max_concurrent} generations are already running; try again shortly"},
        status_code=429,
        headers={"Retry-After": "1"},
    )


# ---- request bodies ------------------------------------------------------------------------
async def read_json(request: Request) -> dict:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, f"request body over {MAX_BODY_BYTES} bytes")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, f"request body over {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw or b"{}", parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, f"the body is not valid JSON ({e})") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object such as {\"start_text\": \"The \", \"length\": 200}")
    return body


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed")


def parse_options(body: dict, lim: Limits, generator: Generator, stream: bool) -> SampleOptions:
    """SampleOptions from a request body; every field is type- and range-checked (400 names it)."""
    check_known(body, FIELDS)
    if stream and body.get("num_samples") not in (None, 1):
        raise ApiError(400, "a stream carries one sample; use POST /generate for num_samples over 1", "num_samples")
    f = Fields(body)
    values = dict(
        sampling_values(f, lim),
        length=f.integer("length", 200, 0, lim.max_length),
        num_samples=f.integer("num_samples", 1, 1, 1 if stream else lim.max_samples),
        sample=f.boolean("sample", True),
        stop_at=f.text("stop_at", None, 100),
    )
    return sample_options(values, generator)


def sampling_values(f: Fields, lim: Limits) -> dict:
    """The fields /generate and /lines share."""
    return dict(
        start_text=f.text("start_text", "", lim.max_start_chars),
        temperature=f.number("temperature", 1.0, 0.0, 10.0, open_low=True),
        top_k=f.integer("top_k", None, 1, 1_000_000),
        top_p=f.number("top_p", None, 0.0, 1.0, open_low=True),
        seed=f.integer("seed", None, 0, 2**63 - 1),
        skip_unknown=f.boolean("skip_unknown", False),
    )


def check_known(body: dict, known: tuple[str, ...]) -> None:
    for name in body:
        if name not in known:
            raise ApiError(400, f"unknown field {name!r}; known fields: {', '.join(known)}", name)


def sample_options(values: dict, generator: Generator) -> SampleOptions:
    from ..sampling.generator import SampleOptions

    try:
        opts = SampleOptions(**values)
    except RnnkitError as e:  # a combination SampleOptions refuses
        raise ApiError(400, str(e)) from None
    if opts.start_text and not opts.skip_unknown:
        try:  # fail now with a 400, not halfway through a stream
            generator.vocab.encode(opts.start_text)
        except UnknownTokensError as e:
            message = f"start_text has {e}; remove them or send \"skip_unknown\": true"
            raise ApiError(400, message, "start_text") from None
    return opts


FIELDS = ("start_text", "length", "temperature", "top_k", "top_p", "seed", "num_samples", "sample", "stop_at",
          "skip_unknown")
LINE_FIELDS = ("count", "novel", "min_chars", "max_chars", "start_text", "temperature", "top_k", "top_p", "seed",
               "skip_unknown")


# ---- list mode -----------------------------------------------------------------------------
@dataclass
class LinesRequest:
    count: int
    novel: bool
    min_chars: int
    max_chars: int
    options: SampleOptions  # temperature, top_k, top_p, seed and the start text every line begins with


def parse_lines(body: dict, lim: Limits, generator: Generator, training: TrainingLines) -> LinesRequest:
    """A POST /lines body, checked as parse_options checks /generate's."""
    check_known(body, LINE_FIELDS)
    f = Fields(body)
    wanted = LinesRequest(
        count=f.integer("count", 10, 1, MAX_LINES),
        novel=f.boolean("novel", False),
        min_chars=f.integer("min_chars", 1, 1, lim.max_length),
        max_chars=f.integer("max_chars", min(200, lim.max_length), 1, lim.max_length),
        options=sample_options(sampling_values(f, lim), generator),
    )
    if wanted.max_chars < wanted.min_chars:
        raise ApiError(400, f"max_chars ({wanted.max_chars}) must be at least min_chars ({wanted.min_chars})", "max_chars")
    if wanted.novel and training.missing:
        raise ApiError(400, f"novel: {training.missing}; send \"novel\": false", "novel")
    return wanted


class TrainingLines:
    """The training text's lines, for novel-only lists: found at start-up, read on first use, once."""

    def __init__(self, meta: dict):
        from ..sampling.lines import training_sources

        self.meta, self._lines, self._lock = meta, None, threading.Lock()
        try:
            training_sources(meta)
            self.missing: str | None = None
        except RnnkitError:
            self.missing = ("this server does not have the model's training text (the run does not name it, "
                            "or it has moved), so it cannot tell new lines from old")

    def get(self) -> set[str]:
        from ..sampling.lines import training_lines, training_sources

        with self._lock:
            if self._lines is None:
                self._lines = training_lines(training_sources(self.meta))
            return self._lines


def write_lines(generator: Generator, wanted: LinesRequest, training: TrainingLines) -> dict:
    """{"lines": [...]}, with a "warning" when fewer than asked were found (runs in a worker thread)."""
    from ..sampling.lines import generate_lines

    warnings: list[str] = []
    try:
        avoid = training.get() if wanted.novel else None
        lines = generate_lines(generator, wanted.count, avoid, wanted.min_chars, wanted.max_chars, wanted.options,
                               warn=warnings.append)
    except RnnkitError as e:  # none found, no newline in the vocabulary, the training text gone
        raise ApiError(422, str(e)) from None
    body: dict[str, Any] = {"lines": lines}
    if warnings:
        body["warning"] = warnings[0].removeprefix("rnnkit: ")
    return body


class Fields:
    """Typed reads of optional JSON fields; JSON null means the default."""

    def __init__(self, body: dict):
        self.body = body

    def _get(self, name: str, default):
        value = self.body.get(name)
        return (True, default) if value is None else (False, value)

    def integer(self, name: str, default, lo: int, hi: int):
        missing, v = self._get(name, default)
        if missing:
            return v
        if isinstance(v, bool) or not isinstance(v, int):
            raise ApiError(400, f"{name} must be a whole number, got {json.dumps(v)[:40]}", name)
        if not lo <= v <= hi:
            raise ApiError(400, f"{name} must be between {lo} and {hi}, got {v}", name)
        return v

    def number(self, name: str, default, lo: float, hi: float, open_low: bool = False):
        missing, v = self._get(name, default)
        if missing:
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ApiError(400, f"{name} must be a number, got {json.dumps(v)[:40]}", name)
        if not (lo < v if open_low else lo <= v) or v > hi:
            low = f"over {lo}" if open_low else f"at least {lo}"
            raise ApiError(400, f"{name} must be {low} and at most {hi}, got {v}", name)
        return float(v)

    def boolean(self, name: str, default: bool) -> bool:
        missing, v = self._get(name, default)
        if not missing and not isinstance(v, bool):
            raise ApiError(400, f"{name} must be true or false, got {json.dumps(v)[:40]}", name)
        return v

    def text(self, name: str, default, max_chars: int):
        missing, v = self._get(name, default)
        if missing:
            return v
        if not isinstance(v, str):
            raise ApiError(400, f"{name} must be a string, got {json.dumps(v)[:40]}", name)
        if len(v) > max_chars:
            raise ApiError(400, f"{name} must be at most {max_chars} characters, got {len(v)}", name)
        return v


# ---- streaming -----------------------------------------------------------------------------
def sse(data: dict, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n"


async def sse_events(generator: Generator, opts: SampleOptions, lease: Lease) -> AsyncIterator[str]:
    """Server-sent events: {"text": piece} per piece, then a "done" (or "error") event.

    One thread runs the whole stream: Generator.stream holds torch's thread-local inference
    mode across its yields, so it must not hop between pool threads from piece to piece.
    The thread frees the lease when it ends, so the limit counts generations still computing.
    """
    queue: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()
    handoff = _Handoff(asyncio.get_running_loop(), queue, stop)
    lease.thread_started = True
    threading.Thread(target=_produce, args=(generator, opts, lease, handoff), name="rnnkit-stream", daemon=True).start()
    chars, pending = 0, None
    try:
        while True:
            item = pending if pending is not None else await queue.get()
            pending = None
            if item is _DONE:
                yield sse({"chars": chars}, "done")
                return
            if isinstance(item, Exception):
                message = str(item) if isinstance(item, RnnkitError) else f"internal error: {type(item).__name__}"
                yield sse({"error": message}, "error")
                return
            text, pending = _piled_up(queue, item)
            chars += len(text)
            yield sse({"text": text})
    finally:
        stop.set()  # the client left or the stream ended: the thread stops after its next piece


_DONE = object()


class LeasedStreamingResponse(StreamingResponse):
    """Frees its lease if the stream never started (say the client left at once)."""

    def __init__(self, content, lease: Lease, **kwargs):
        super().__init__(content, **kwargs)
        self.lease = lease

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()
            if not self.lease.thread_started:
                self.lease.release()


# ---- running it ----------------------------------------------------------------------------
def serve(
    checkpoint: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    device: str | None = "auto",
    log_level: str = "info",
    token: str | None = None,
    no_token: bool = False,
    ngram: bool = True,
    **limits: Any,
) -> None:
    """Load a checkpoint (or run folder) and serve it until Ctrl+C. Port 0 picks a free port.

    A host other than loopback needs a token, or no_token=True to serve without one knowingly.
    ngram=False serves the network alone, without the checkpoint's n-gram mixture.
    """
    check_token_for_host(host, token, no_token)  # before anything slow: a flag mistake fails at once
    import uvicorn  # imported here so the rest of rnnkit does not need it

    from ..sampling.generator import Generator

    generator = Generator.load(checkpoint, device, ngram=ngram)
    app = create_app(generator, token=token, **limits)
    sock = bind(host, port)
    announce(generator.meta.get("checkpoint_path"), host, sock.getsockname()[1], token is not None)
    config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=3)
    uvicorn.Server(config).run(sockets=[sock])


def announce(checkpoint: str | None, host: str, port: int, has_token: bool) -> None:
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
    if not _is_loopback(host):
        risk = "plain HTTP, so the token is readable on the network" if has_token else "there is no login"
        print(f"rnnkit: warning: listening on {host}, reachable from other machines; {risk}", file=sys.stderr)
    if has_token:
        print(f"rnnkit: requests need 'Authorization: Bearer <token>'; in a browser open {url}#token=<token>",
              file=sys.stderr)
    print(f"rnnkit: serving {checkpoint} at {url} (Ctrl+C to stop)", file=sys.stderr, flush=True)


def bind(host: str, port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {port}")
    try:
        family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise ConfigError(f"--host {host!r} is not an address this machine can listen on ({e.strerror})") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        raise RnnkitError(f"cannot listen on {host}:{port} ({e.strerror}); pick another --port") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class _Handoff:
    """Puts items on the event loop's queue from the generating thread."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue
    stop: threading.Event

    def put(self, item) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is gone: the server is shutting down
            self.stop.set()

    def call(self, fn) -> None:
        try:
            self.loop.call_soon_threadsafe(fn)
        except RuntimeError:
            pass


def _produce(generator: Generator, opts: SampleOptions, lease: Lease, handoff: _Handoff) -> None:
    """The generating thread: every piece, then the end marker (or the error); then it frees the lease."""
    pieces = generator.stream(opts)
    end: object = _DONE
    try:
        for piece in pieces:
            handoff.put(piece)
            if handoff.stop.is_set():
                break
    except RnnkitError as e:
        end = e
    except Exception as e:
        log.exception("generation failed")
        end = e
    finally:
        pieces.close()
        handoff.put(end)
        handoff.call(lease.release)


def _piled_up(queue: asyncio.Queue, first: str) -> tuple[str, object | None]:
    """`first` and the pieces that piled up behind it, as one text (a fast sampler outruns the
    network and the browser); and the first non-text item met, to handle next."""
    pieces = [first]
    while not queue.empty() and len(pieces) < 4096:
        nxt = queue.get_nowait()
        if not isinstance(nxt, str):
            return "".join(pieces), nxt
        pieces.append(nxt)
    return "".join(pieces), None
