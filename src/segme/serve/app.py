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

A request's way in: ``UploadGuard`` (body size, read deadline, uploads at once) -> the whole
body read -> the image header checked (``Job.prepare``) -> a place in the pool (``admit``) ->
its share of the memory budget -> a worker (``Job.__call__``) -> the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import math
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from PIL import Image
from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from segme import effects
from segme.io.images import ImageError, ImageTooLarge, decode_image, image_size
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
# The model, guided upsampling and refine see a larger photo shrunk to at most this many
# pixels (by a whole factor); the alpha is upsampled to full size at the end, where the output
# needs it. A 224-pixel model's edges gain nothing from a finer guide, and the full-size float
# planes of guided upsampling (17 bytes a pixel) are what took 40 MP images past 1 GB.
WORK_PIXELS = 4_000_000
# Peak bytes a job holds, per pixel of the photo at the working size (decoding, the model,
# guided upsampling; refine's guided filter on top) and per pixel of the whole photo (what
# the output needs at full size: the mask; the photo and the mask for cutout; the photo, the
# alpha and the effect's planes for replace and blur). Measured (`python benchmarks/load.py
# --scenario jobs`), with room for the larger PNG a noisy photo's cutout makes.
WORK_BYTES, REFINE_BYTES = 22, 24
FULL_BYTES = {"mask": 1, "cutout": 10, "replace": 17, "blur": 17}
UPLOAD_GRACE = 2.0  # seconds before an upload's minimum rate applies (first bytes, slow start)


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
    size: tuple[int, int] = (0, 0)  # (H, W) of the photo, from its header (prepare)
    shrink: int = 1  # the model's side of the work sees the photo at 1/shrink of each side
    bg_shrink: int = 1  # the background is decoded at 1/bg_shrink, still covering the photo

    def prepare(self, max_pixels: int) -> int:
        """Read the sizes from the image headers (ImageTooLarge, ImageError before anything
        is decoded) and plan the work; the bytes the job will hold at its peak."""
        self.size = image_size(self.image, self.image_name, max_pixels)
        pixels = self.size[0] * self.size[1]
        self.shrink = math.ceil(math.sqrt(pixels / WORK_PIXELS))
        work = math.ceil(self.size[0] / self.shrink) * math.ceil(self.size[1] / self.shrink)
        memory = ((WORK_BYTES + REFINE_BYTES * self.refine) * work
                  + FULL_BYTES[self.verb] * pixels + len(self.image))
        if self.background is not None:
            bh, bw = image_size(self.background, "field 'background'", max_pixels)
            # the short side still covers the photo's long side: enough for fill and fit,
            # whichever way either is turned
            self.bg_shrink = max(1, min(bh, bw) // max(self.size))
            # decoded (7 bytes a pixel at its peak), then scaled to cover the photo and cropped
            memory += (7 * math.ceil(bh / self.bg_shrink) * math.ceil(bw / self.bg_shrink)
                       + 3 * pixels + len(self.background))
        return memory

    def __call__(self, seg, max_pixels: int) -> bytes:
        """Decode, segment, apply the effect, encode; runs on a worker thread."""
        return encode(self.render(seg, max_pixels), _FORMATS[self.format][0])

    def render(self, seg, max_pixels: int) -> np.ndarray:
        """The output image, uint8 [H, W] (mask), [H, W, 4] (cutout) or [H, W, 3].

        A photo of up to WORK_PIXELS goes through the library's path as it is. A larger
        one is segmented at 1/shrink of each side and its alpha bilinearly upsampled; /mask
        never decodes the photo whole (JPEG decodes at the reduced size), the other verbs
        decode it for their full-size output. Locals die on return: the encoder gets the
        memory of the photo and the alpha back.
        """
        image = None
        if self.verb == "mask":
            small = decode_image(self.image, self.image_name, max_pixels, shrink=self.shrink)
        else:
            image = decode_image(self.image, self.image_name, max_pixels)  # uint8 [H, W, 3]
            h, w = image.shape[:2]
            small = image if self.shrink == 1 else cv2.resize(
                image, (-(-w // self.shrink), -(-h // self.shrink)), interpolation=cv2.INTER_AREA)
        background = None
        if self.background is not None:  # decoded before the model runs: fail fast
            background = decode_image(self.background, "field 'background'", max_pixels,
                                      shrink=self.bg_shrink)
        alpha = seg(small)  # float32 [h, w] in [0, 1]
        if self.refine:
            alpha = effects.refine(alpha, small)
        del small
        height, width = image.shape[:2] if image is not None else self.size
        if self.verb in ("mask", "cutout"):
            mask = effects.mask8(alpha)  # upsampled as uint8: a quarter of the float's memory
            if mask.shape != (height, width):
                mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
            return mask if self.verb == "mask" else np.dstack([image, mask])  # effects.cutout
        if alpha.shape != (height, width):
            alpha = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_LINEAR)
        if self.verb == "replace":
            bg = background if background is not None else self.color
            return effects.replace_background(image, alpha, bg, self.fit)
        return effects.blur_background(image, alpha, self.strength)


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
    memory: int = 1_000_000_000,
    upload_timeout: float = 120.0,
    min_upload_rate: float = 10_000.0,
    max_uploads: int = 128,
    max_uploads_per_client: int = 8,
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
            flight a request gets 503 at once, with ``Retry-After``. A request takes its
            place only once its body has arrived.
        max_bytes: largest request body (the whole multipart body, background included);
            larger gets 413 before any decoding, and a declared Content-Length larger than
            this before any of the body is read.
        max_pixels: largest image (width x height, read from its header before decoding);
            larger gets 413.
        timeout: seconds from admission (waits for memory and a worker included) to the
            result; later gets 504.
        memory: bytes that the images being processed may hold together; a job waits for
            its share, estimated from its image header (``WORK_BYTES``, ``FULL_BYTES``: a
            40 MP photo takes about 100 MB for /mask, 370 for /cutout, 700 for /replace and
            /blur); one that needs more than this runs alone.
        upload_timeout: seconds a client has to send its whole body; later gets 408 and the
            connection is closed.
        min_upload_rate: bytes a second a body must average after its first UPLOAD_GRACE
            seconds (0: no minimum); a slower one gets 408 and the connection is closed.
        max_uploads: requests that may be sending their bodies at once; one more gets 503.
        max_uploads_per_client: of those, from one client address; one more gets 429.
        static_dir: folder served at ``/static`` (and its ``index.html`` at ``/``) when it
            exists; None: none.

    Returns:
        The app, for uvicorn (``segme serve``) or a test client.

    Raises:
        ValueError, FileNotFoundError: a bad limit or model file.
    """
    for name, value in (("max_bytes", max_bytes), ("max_pixels", max_pixels),
                        ("timeout", timeout), ("memory", memory),
                        ("upload_timeout", upload_timeout), ("max_uploads", max_uploads),
                        ("max_uploads_per_client", max_uploads_per_client)):
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    if not min_upload_rate >= 0:
        raise ValueError(f"min_upload_rate must be 0 or more, got {min_upload_rate}")
    pool = InferencePool(model, workers=workers, threads=threads, queue=queue, memory=memory)
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
    app.state.uploads = uploads = Uploads()
    app.add_middleware(UploadGuard, uploads=uploads, max_bytes=max_bytes,
                       timeout=upload_timeout, min_rate=min_upload_rate, max_uploads=max_uploads,
                       max_per_client=max_uploads_per_client)
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
             "queue_depth": pool.waiting, "queue_limit": pool.queue_limit,
             "uploading": uploads.total, "memory_mb": round(pool.budget.used / 1e6),
             "memory_limit_mb": round(pool.budget.total / 1e6)},
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
        """One image request: read, validate, admit, run on a worker, answer."""
        job = await _read_job(request, verb)  # the whole body, under UploadGuard's limits
        try:
            # image headers only (400/413 before any decoding), off the event loop: a
            # crafted file can make even a header slow to parse
            memory = await asyncio.to_thread(job.prepare, max_pixels)
            try:
                slot = pool.admit()  # only now: a slow upload holds no worker or queue place
            except Busy as e:
                raise Refused(503, str(e), {"Retry-After": "1"}) from None
            try:
                data = await pool.run(slot, partial(job, max_pixels=max_pixels), timeout,
                                      memory)
            finally:
                if not slot.handed_over:
                    slot.release()
        except ImageTooLarge as e:
            raise Refused(413, str(e)) from None
        except ImageError as e:
            raise Refused(400, str(e)) from None
        except TimeoutError:
            raise Refused(504, f"no result within {timeout:g} s: the server is busy or "
                          "the image is large; retry later or send a smaller one") from None
        return Response(data, media_type=_FORMATS[job.format][1])

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


@dataclass
class Uploads:
    """Requests sending their bodies now: in all, and per client address."""

    total: int = 0
    by_client: dict[str, int] = field(default_factory=dict)

    def add(self, client: str, n: int) -> None:
        self.total += n
        self.by_client[client] = self.by_client.get(client, 0) + n
        if not self.by_client[client]:
            del self.by_client[client]


class UploadGuard:
    """ASGI middleware: request bodies bounded in size, in time and in number.

    - Size: a declared ``Content-Length`` above ``max_bytes`` is answered 413 at once, none
      of the body read, and the connection closed; a body that grows past it (chunked)
      raises ``Refused(413)`` from ``receive``.
    - Time: the whole body within ``timeout`` seconds, and from ``UPLOAD_GRACE`` seconds on
      at least ``min_rate`` bytes a second on average; a client that falls behind gets 408
      (``Refused`` from ``receive``) and the connection is closed. uvicorn has no such
      deadline (its keep-alive timeout covers only the idle time between requests).
    - Number: at most ``max_uploads`` requests send their bodies at once, ``max_per_client``
      of them from one client address; one more gets 503 (429 for the one address) at once,
      with ``Retry-After``, and the connection is closed.

    A response that starts before the body has all arrived (a 415, a 404) first reads the
    rest, under the same limits: a client still writing would otherwise get a connection
    reset instead of the answer. A response after a refusal mid-body closes the connection.
    """

    def __init__(self, app, uploads: Uploads, max_bytes: int, timeout: float, min_rate: float,
                 max_uploads: int, max_per_client: int) -> None:
        self.app = app
        self.uploads = uploads
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.min_rate = min_rate
        self.max_uploads = max_uploads
        self.max_per_client = max_per_client

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length", "").strip()
        if length.isdigit() and int(length) > self.max_bytes:
            await _answer(scope, receive, send, 413, _too_big(self.max_bytes))
            return
        if "chunked" not in headers.get("transfer-encoding", "").lower() and (
                not length.isdigit() or int(length) == 0):
            await self.app(scope, receive, send)  # no body: nothing to wait for
            return
        client = (scope.get("client") or ("",))[0]
        if self.uploads.total >= self.max_uploads:
            await _answer(scope, receive, send, 503, f"{self.max_uploads} uploads are in "
                          "progress, the most this server takes at once; retry shortly",
                          {"Retry-After": "1"})
            return
        if self.uploads.by_client.get(client, 0) >= self.max_per_client:
            await _answer(scope, receive, send, 429, f"{self.max_per_client} uploads from your "
                          "address are in progress, the most this server takes from one; "
                          "retry when one is done", {"Retry-After": "1"})
            return
        self.uploads.add(client, 1)
        loop = asyncio.get_running_loop()
        start = loop.time()
        # with Expect: 100-continue the client waits for a go-ahead (the first receive())
        # before sending the body: nothing to read before a response that comes first
        expects_continue = headers.get("expect", "").lower() == "100-continue"
        state = {"received": 0, "complete": False, "counted": True, "reading": False,
                 "close": False, "gone": False}

        def stop_counting() -> None:
            if state["counted"]:
                state["counted"] = False
                self.uploads.add(client, -1)

        async def guarded_receive():
            if state["complete"]:
                return await receive()
            state["reading"] = True
            allowed = self.timeout
            if self.min_rate:
                allowed = min(allowed, UPLOAD_GRACE + state["received"] / self.min_rate)
            try:
                message = await asyncio.wait_for(receive(), start + allowed - loop.time())
            except asyncio.TimeoutError:
                state["close"] = True
                stop_counting()
                raise Refused(408, _too_slow(state["received"], length, loop.time() - start,
                                             self.timeout, self.min_rate)) from None
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                state["complete"] = not message.get("more_body", False)
                if state["received"] > self.max_bytes:
                    state["close"] = True
                    stop_counting()
                    raise Refused(413, _too_big(self.max_bytes))
            else:  # http.disconnect
                state["complete"] = state["gone"] = True
            if state["complete"]:
                stop_counting()
            return message

        async def guarded_send(message) -> None:
            if message["type"] == "http.response.start" and not state["complete"]:
                if not state["close"] and (state["reading"] or not expects_continue):
                    try:
                        while not state["complete"]:
                            await guarded_receive()
                    except Refused:
                        pass
                if not state["complete"]:  # answer and hang up
                    message = {**message, "headers": [*message.get("headers", []),
                                                      (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except ClientDisconnect:
            if not state["gone"]:
                raise
            # the client hung up mid-upload: nobody to answer, nothing worth a traceback
        finally:
            stop_counting()


async def _answer(scope, receive, send, status: int, error: str,
                  headers: dict[str, str] | None = None) -> None:
    """A JSON refusal sent before any of the body is read; the connection is closed after."""
    response = JSONResponse({"error": error}, status_code=status,
                            headers={**(headers or {}), "Connection": "close"})
    await response(scope, receive, send)


def _too_slow(received: int, length: str, seconds: float, timeout: float, rate: float) -> str:
    of = f" of {length}" if length else ""
    need = f" and at {rate / 1e3:g} kB/s or faster" if rate else ""
    return (f"request body too slow: {received}{of} bytes in {seconds:.1f} s; send it within "
            f"{timeout:g} s{need}")


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
