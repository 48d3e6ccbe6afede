"""The HTTP API: ``create_app()`` builds a FastAPI app around one model.

    POST /v1/cutout   image -> the person on transparency (PNG or WebP, RGBA)
    POST /v1/mask     image -> the alpha as an 8-bit grey image (PNG by default)
    POST /v1/replace  image + bg colour or background image -> composite (JPEG by default)
    POST /v1/blur     image -> background blurred (JPEG by default)
    GET  /healthz, /v1/model (the ModelCard as JSON), /v1/model.onnx, /docs, /

The image comes as the multipart field ``file`` or as the whole request body with
``Content-Type: image/*``; options come as query parameters or form fields. Every refusal is
JSON ``{"error": "..."}`` with a 4xx status (503/504 for load), never a 500 for what a
client sent. Clients send bytes only: no parameter names a file on the server.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from PIL import Image
from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from segme import effects
from segme.io.images import ImageError, ImageTooLarge, decode_image
from segme.segmenter import DEFAULT_MODEL
from segme.serve.pool import Busy, InferencePool

STATIC = Path(__file__).parent / "static"  # the in-browser demo page, when installed
log = logging.getLogger("segme.serve")

# format parameter -> (Pillow format, Content-Type); options favour speed over the last byte
_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"),
            "jpg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}
_SAVE_OPTIONS = {"PNG": {"compress_level": 3}, "JPEG": {"quality": 90}, "WEBP": {"quality": 90}}
_RAW_TYPES = ("image/", "application/octet-stream")
_HOW_TO_SEND = ("send the image as the request body with Content-Type image/jpeg (image/png, "
                "...) or as the file field 'file' of a multipart/form-data body")
_TRUE, _FALSE = ("", "1", "true", "yes", "on"), ("0", "false", "no", "off")
MAX_STRENGTH = 100.0  # blur: 10% of the short side; beyond that the picture is all blur


class Refused(Exception):
    """A request the server will not serve; becomes ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


@dataclass(frozen=True)
class Verb:
    """One image endpoint: what it takes and what it returns."""

    name: str
    formats: tuple[str, ...]  # allowed values of ``format``, the default first
    params: tuple[str, ...]  # options besides format and refine
    files: tuple[str, ...] = ("file",)  # multipart file fields
    summary: str = ""


VERBS = {
    "cutout": Verb("cutout", ("png", "webp"), (), summary="The person on a transparent "
                   "background: RGBA PNG or WebP, the alpha as transparency."),
    "mask": Verb("mask", ("png", "jpeg", "jpg", "webp"), (), summary="The person's alpha as "
                 "an 8-bit grey image (0 background, 255 person)."),
    "replace": Verb("replace", ("jpeg", "jpg", "png", "webp"), ("bg", "fit"),
                    ("file", "background"), summary="The person over a colour (bg) or an "
                    "uploaded background image (multipart field background)."),
    "blur": Verb("blur", ("jpeg", "jpg", "png", "webp"), ("strength",),
                 summary="The background blurred, the person sharp."),
}

_PARAM_DOCS = {
    "format": "Output format: png, jpeg or webp (default: png for cutout and mask, jpeg for "
              "replace and blur; cutout needs png or webp for its transparency).",
    "refine": "true: snap the mask's edges to the image's (guided filter).",
    "bg": "Background colour: a name (green), #rrggbb or r,g,b.",
    "fit": "How a background image covers the frame: fill (crop, default) or fit (pad).",
    "strength": "Blur radius in tenths of a percent of the short side, 0 to 100 (default 15).",
}


@dataclass
class Job:
    """A validated request, ready for a worker."""

    verb: str
    image: bytes
    image_name: str
    format: str  # a key of _FORMATS
    refine: bool = False
    color: tuple[int, int, int] | None = None
    background: bytes | None = None
    fit: str = "fill"
    strength: float = 15.0

    def __call__(self, seg, max_pixels: int) -> bytes:
        """Decode, segment, apply the effect, encode; runs on a worker thread."""
        image = decode_image(self.image, self.image_name, max_pixels)  # uint8 [H, W, 3]
        background = None
        if self.background is not None:  # decoded before the model runs: fail fast
            background = decode_image(self.background, "field 'background'", max_pixels)
        alpha = seg(image)  # float32 [H, W] in [0, 1]
        if self.refine:
            alpha = effects.refine(alpha, image)
        if self.verb == "cutout":
            out = effects.cutout(image, alpha)
        elif self.verb == "mask":
            out = effects.mask8(alpha)
        elif self.verb == "replace":
            bg = background if background is not None else self.color
            out = effects.replace_background(image, alpha, bg, self.fit)
        else:
            out = effects.blur_background(image, alpha, self.strength)
        return encode(out, _FORMATS[self.format][0])


def encode(array: np.ndarray, fmt: str) -> bytes:
    """uint8 [H, W], [H, W, 3] or [H, W, 4] -> the bytes of a ``fmt`` (Pillow name) file."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **_SAVE_OPTIONS.get(fmt, {}))
    return buf.getvalue()


def create_app(
    model: str | Path | None = None,
    *,
    workers: int = 2,
    threads: int | None = None,
    queue: int = 16,
    max_bytes: int = 20_000_000,
    max_pixels: int = 40_000_000,
    timeout: float = 30.0,
    static_dir: str | Path | None = STATIC,
) -> FastAPI:
    """The segme HTTP API around one model, loaded here, once.

    Args:
        model: model file (``.onnx``, or ``.tflite`` / ``.pt`` / ``.safetensors`` where that
            runtime is installed); None: the built-in model. Only an ``.onnx`` model is
            offered for download at ``/v1/model.onnx``.
        workers: images processed at once, each on its own thread with its own session.
        threads: inference threads per worker; None: cores // workers (at least 1).
        queue: requests that may wait for a worker; beyond ``workers + queue`` requests in
            flight a request gets 503 at once, with ``Retry-After``.
        max_bytes: largest request body (the whole multipart body, background included);
            larger gets 413 before any decoding.
        max_pixels: largest image (width x height, read from its header before decoding);
            larger gets 413. A job holds roughly 20-40 bytes per pixel while it runs
            (decoded image, alpha, effect, output), so workers x max_pixels bounds memory.
        timeout: seconds from hand-over to a worker (queue wait included) to the result;
            later gets 504.
        static_dir: folder served at ``/static`` (and its ``index.html`` at ``/``) when it
            exists; None: none.

    Returns:
        The app, for uvicorn (``segme serve``) or a test client.

    Raises:
        ValueError, FileNotFoundError: a bad limit or model file.
    """
    for name, value in (("max_bytes", max_bytes), ("max_pixels", max_pixels),
                        ("timeout", timeout)):
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    pool = InferencePool(model, workers=workers, threads=threads, queue=queue)
    model_path = pool.model if pool.model is not None else DEFAULT_MODEL
    static = Path(static_dir) if static_dir is not None else None

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        pool.close()

    # /docs is Swagger UI with its script and style served from this server
    # (/static-offline-docs), not a CDN, so it works offline; no /redoc: ReDoc's page
    # fetches its logo from a CDN
    app = FastAPIOffline(
        title="segme",
        summary="Person segmentation: cut-outs, masks, new or blurred backgrounds.",
        version=_version(),
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.pool = pool
    app.add_middleware(BodyLimit, max_bytes=max_bytes)
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(StarletteHTTPException, _http_error)

    for verb in VERBS.values():
        app.add_api_route(
            f"/v1/{verb.name}", _endpoint(verb, pool, max_pixels, timeout), methods=["POST"],
            name=verb.name, summary=verb.summary, response_class=Response,
            responses=_responses(verb), openapi_extra=_openapi(verb),
        )

    @app.get("/healthz", summary="Liveness, the model, and the load right now.")
    async def healthz() -> JSONResponse:
        ready = not pool.closed
        return JSONResponse(
            {"status": "ok" if ready else "stopping", "ready": ready,
             "arch": pool.card.arch, "input_size": list(pool.card.input_size),
             "workers": pool.workers, "threads": pool.threads, "running": pool.running,
             "queue_depth": pool.waiting, "queue_limit": pool.queue_limit},
            status_code=200 if ready else 503)

    @app.get("/v1/model", summary="The ModelCard: how to feed the model yourself.")
    async def model_card() -> JSONResponse:
        # card fields at the top level, so ModelCard.from_json(body) works (extras ignored)
        card = asdict(pool.card)
        card["onnx_url"] = "/v1/model.onnx" if model_path.suffix.lower() == ".onnx" else None
        return JSONResponse(card)

    @app.get("/v1/model.onnx", summary="The ONNX model file (only when serving an .onnx).",
             response_class=FileResponse)
    async def model_file() -> FileResponse:
        if model_path.suffix.lower() != ".onnx":
            raise Refused(404, f"this server runs a {model_path.suffix} model, not ONNX; "
                          "export one with `segme export -o model.onnx` and serve that")
        return FileResponse(model_path, media_type="application/octet-stream")

    if static is not None and static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        page = static / "index.html" if static is not None else None
        if page is not None and page.is_file():
            return FileResponse(page, media_type="text/html")
        return HTMLResponse(_FALLBACK_PAGE)

    return app


def _endpoint(verb: Verb, pool: InferencePool, max_pixels: int, timeout: float):
    async def endpoint(request: Request) -> Response:
        """One image request: admit, read, validate, run on a worker, answer."""
        try:
            slot = pool.admit()  # before the upload is read: refusing is cheap
        except Busy as e:
            raise Refused(503, str(e), {"Retry-After": "1"}) from None
        try:
            job = await _read_job(request, verb)
            try:
                data = await pool.run(slot, partial(job, max_pixels=max_pixels), timeout)
            except ImageTooLarge as e:
                raise Refused(413, str(e)) from None
            except ImageError as e:
                raise Refused(400, str(e)) from None
            except TimeoutError:
                raise Refused(504, f"no result within {timeout:g} s: the server is busy or "
                              "the image is large; retry later or send a smaller one") from None
            return Response(data, media_type=_FORMATS[job.format][1])
        finally:
            if not slot.handed_over:
                slot.release()

    return endpoint


async def _read_job(request: Request, verb: Verb) -> Job:
    """The image and options of a request, validated; Refused (4xx) on anything wrong."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    params = dict(request.query_params)
    for key in request.query_params:
        if len(request.query_params.getlist(key)) > 1:
            raise Refused(400, f"query parameter {key!r} is given more than once")
    uploads: dict[str, bytes] = {}
    if ctype == "multipart/form-data":
        # a request here has at most two files and a few short options
        async with request.form(max_files=len(verb.files), max_fields=16) as form:
            for key, value in form.multi_items():
                if len(form.getlist(key)) > 1:
                    raise Refused(400, f"field {key!r} is given more than once")
                if isinstance(value, UploadFile):
                    if key not in verb.files:
                        raise Refused(400, _unknown(verb, key, "file field"))
                    uploads[key] = await value.read()
                elif key in verb.files:
                    raise Refused(400, f"field {key!r} must be an uploaded file, not text "
                                  f"(curl: -F {key}=@photo.jpg)")
                else:
                    params[key] = value  # a form field overrides the query parameter
        if "file" not in uploads:
            got = ", ".join(repr(k) for k in uploads) or "none"
            raise Refused(400, f"no image: send it as the multipart file field 'file' "
                          f"(file fields received: {got})")
        image, image_name = uploads["file"], "field 'file'"
    elif ctype.startswith(_RAW_TYPES):
        image, image_name = await request.body(), "the request body"
    elif not ctype and not await request.body():
        raise Refused(400, f"empty body: {_HOW_TO_SEND}")
    else:
        raise Refused(415, f"Content-Type {ctype or 'missing'!r} is not an image: "
                      f"{_HOW_TO_SEND}")
    if not image:
        raise Refused(400, f"empty {'body' if image_name == 'the request body' else 'image'}: "
                      f"{image_name} has 0 bytes; {_HOW_TO_SEND}")
    known = {"format", "refine", *verb.params}
    for key in params:
        if key not in known:
            raise Refused(400, _unknown(verb, key, "parameter"))
    fmt = params.get("format", verb.formats[0]).strip().lower()
    if fmt not in verb.formats:
        if fmt in _FORMATS:
            raise Refused(400, f"{verb.name} output cannot be {fmt}: it has transparency; "
                          f"use format={' or '.join(verb.formats)}")
        raise Refused(400, f"unknown format {fmt!r}; use one of {', '.join(verb.formats)}")
    job = Job(verb.name, image, image_name, fmt,
              refine=_flag("refine", params.get("refine", "false")))
    if verb.name == "replace":
        job.background = uploads.get("background")
        if job.background is not None and "bg" in params:
            raise Refused(400, "give either bg (a colour) or the file field background, "
                          "not both")
        if job.background is None:
            if "bg" not in params:
                raise Refused(400, "no background: give bg (a colour such as green, #00b140 "
                              "or 0,177,64) or upload an image as the file field background")
            try:
                job.color = effects.parse_color(params["bg"].strip())
            except ValueError as e:
                raise Refused(400, f"bad bg: {e}") from None
        elif not job.background:
            raise Refused(400, "empty image: field 'background' has 0 bytes")
        job.fit = params.get("fit", "fill").strip().lower()
        if job.fit not in ("fill", "fit"):
            raise Refused(400, f"fit must be fill or fit, got {params['fit']!r}")
    if verb.name == "blur":
        job.strength = _number("strength", params.get("strength", "15"), 0.0, MAX_STRENGTH)
    return job


def _unknown(verb: Verb, key: str, what: str) -> str:
    names = verb.files if what == "file field" else ("format", "refine", *verb.params)
    return (f"unknown {what} {key!r}; /v1/{verb.name} takes {what}s: "
            f"{', '.join(names)}")


def _flag(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise Refused(400, f"{name} must be true or false, got {value!r}")


def _number(name: str, value: str, low: float, high: float) -> float:
    try:
        x = float(value)
    except ValueError:
        x = math.nan
    if not low <= x <= high:  # NaN fails too
        raise Refused(400, f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
    return x


class BodyLimit:
    """ASGI middleware: a cap on request bodies, and an unread body read before a refusal.

    A declared ``Content-Length`` above ``max_bytes`` is refused with 413 without calling
    the app; a body that grows past it (chunked uploads) raises ``Refused(413)`` from
    ``receive``. A response that starts before the client finished sending (a 413, a 503
    at admission) first reads and discards up to ``drain_bytes`` of the rest: a client
    still writing its upload would otherwise get a connection reset instead of the answer.
    """

    def __init__(self, app, max_bytes: int, drain_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = drain_bytes if drain_bytes is not None else 4 * max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        # with Expect: 100-continue the client waits for a go-ahead before sending the body,
        # so a refusal before the first receive() needs no draining
        expects_continue = headers.get("expect", "").lower() == "100-continue"
        state = {"done": not chunked and (length is None or length.strip() == "0"),
                 "received": 0, "reading": False}

        async def limited_receive():
            message = await receive()
            state["reading"] = True
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                state["done"] = not message.get("more_body", False)
                if state["received"] > self.max_bytes:
                    raise Refused(413, _too_big(self.max_bytes))
            else:
                state["done"] = True
            return message

        async def draining_send(message) -> None:
            if (message["type"] == "http.response.start" and not state["done"]
                    and (state["reading"] or not expects_continue)):
                drained = 0
                while not state["done"] and drained <= self.drain_bytes:
                    m = await receive()
                    drained += len(m.get("body", b""))
                    state["done"] = m["type"] != "http.request" or not m.get("more_body")
                if not state["done"]:  # too much to read: answer and hang up
                    message = {**message,
                               "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        if length is not None and length.strip().isdigit() and int(length) > self.max_bytes:
            response = JSONResponse({"error": _too_big(self.max_bytes)}, status_code=413)
            await response(scope, receive, draining_send)
            return
        await self.app(scope, limited_receive, draining_send)


def _too_big(max_bytes: int) -> str:
    return (f"request body is larger than the {max_bytes / 1e6:g} MB allowed; send a smaller "
            "or more compressed image")


async def _refused(_: Request, exc: Refused) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    # Starlette's own refusals (404, 405, malformed multipart) in the same JSON shape
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                        headers=exc.headers)


def _responses(verb: Verb) -> dict:
    types = sorted({_FORMATS[f][1] for f in verb.formats})
    err = {"content": {"application/json": {"example": {"error": "what went wrong"}}}}
    return {
        200: {"description": "The result image.", "content": {t: {} for t in types}},
        400: {"description": "Bad input: empty, not an image, truncated, bad option.", **err},
        413: {"description": "Body or image too large.", **err},
        415: {"description": "Neither an image body nor multipart.", **err},
        503: {"description": "Busy: every worker and queue place taken (Retry-After).", **err},
        504: {"description": "No result within the server's timeout.", **err},
    }


def _openapi(verb: Verb) -> dict:
    """Request documentation for /docs (the handler reads the body itself, so FastAPI
    cannot infer it)."""
    names = ("format", "refine", *verb.params)
    props = {f: {"type": "string", "format": "binary"} for f in verb.files}
    props.update({n: {"type": "string", "description": _PARAM_DOCS[n]} for n in names})
    return {
        "parameters": [{"name": n, "in": "query", "required": False,
                        "schema": {"type": "string"}, "description": _PARAM_DOCS[n]}
                       for n in names],
        "requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                               "properties": props}},
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        }},
    }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("segme")
    except PackageNotFoundError:
        return "0"


_FALLBACK_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>segme</title></head>
<body>
<h1>segme</h1>
<p>Person segmentation over HTTP. The API and a form to try it: <a href="/docs">/docs</a>.</p>
<p>Health: <a href="/healthz">/healthz</a> &middot; model card: <a href="/v1/model">/v1/model</a></p>
<p>The live web page (the model running in your browser) is not built in this installation:
in a checkout, run <code>make web</code> (Node.js and npm; see web/README.md) and restart.</p>
</body></html>
"""
