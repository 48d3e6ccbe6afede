"""The HTTP API: ``create_app()`` builds a FastAPI app around one model.

    POST /v1/cutout   image -> the person on transparency (PNG or WebP, RGBA)
    POST /v1/mask     image -> the alpha as an 8-bit grey image (PNG by default)
    POST /v1/replace  image + bg colour or background image -> composite (JPEG by default)
    POST /v1/blur     image -> background blurred (JPEG by default)
    GET  /healthz, /v1/model (the ModelCard as JSON), /v1/model.onnx, /docs, /

The image comes as the multipart field ``file`` or as the whole request body with
``Content-Type: image/*``; options come as query parameters or form fields. The endpoints
are typed (``UploadFile``, ``Query``, ``Form``, enums), so FastAPI validates each option and
writes the OpenAPI document (``/openapi.json``) from the same declarations: a request the
document allows is served. Every refusal is JSON ``{"error": "..."}`` with a 4xx status
(503/504 for load), never a 500 for what a client sent. Clients send bytes only: no
parameter names a file on the server.

A request's way in: ``UploadGuard`` (body size, read deadline, uploads at once) -> the whole
body read and its shape checked (``ImageRoute``) -> the options validated (FastAPI) -> the
image header checked (``Job.prepare``) -> a place in the pool (``admit``) -> its share of
the memory budget -> a worker (``Job.__call__``, ``segme.effects.render``) -> the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import logging
import math
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import cv2
import numpy as np
from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from PIL import Image, ImageColor
from pydantic import BaseModel, Field, StringConstraints
from starlette.datastructures import Headers
from starlette.datastructures import UploadFile as Upload  # what a parsed form holds
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from segme import effects
from segme.cards import ModelCard
from segme.io.images import ImageError, ImageTooLarge, decode_image, image_size
from segme.postprocess import BAND, DEFAULT_UPSAMPLE, GUIDED_EPS, UPSAMPLE, guided_radius
from segme.segmenter import DEFAULT_MODEL
from segme.serve.pool import Busy, InferencePool

STATIC = Path(__file__).parent / "static"  # the in-browser demo page, when installed
log = logging.getLogger("segme.serve")

# format parameter -> (Pillow format, Content-Type); options favour speed over the last byte
_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"),
            "jpg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}
_SAVE_OPTIONS = {"PNG": {"compress_level": 3}, "JPEG": {"quality": 90}, "WEBP": {"quality": 90}}
_RAW_TYPES = ("image/", "application/octet-stream")
# what an upload may be (segme.io.images decodes these), for the OpenAPI document
_IMAGE_TYPES = "image/jpeg, image/png, image/webp, image/bmp, image/tiff, image/gif"
_HOW_TO_SEND = ("send the image as the request body with Content-Type image/jpeg (image/png, "
                "...) or as the file field 'file' of a multipart/form-data body")
_HOW_TO_CALL = ("Send the photo as the multipart field `file`, or as the whole request body "
                "with `Content-Type: image/*`. Options are query parameters or form fields (a "
                "form field wins).")
MAX_STRENGTH = 100.0  # blur: 10% of the short side; beyond that the picture is all blur
# The model and guided upsampling see a larger photo shrunk to at most this many pixels (by
# a whole factor); the alpha is upsampled to full size at the end, where the output needs it.
# A 224-pixel model's edges gain nothing from a finer guide, and the full-size float planes
# of guided upsampling (17 bytes a pixel) are what took 40 MP images past 1 GB.
WORK_PIXELS = 4_000_000
# Peak bytes a job holds, per pixel of the photo at the working size (decoding, the model,
# guided upsampling) and per pixel of the whole photo (what the output needs at full size:
# the mask; the photo and the mask for cutout; the photo, the alpha and the effect's planes
# for replace and blur). Measured (`python benchmarks/load.py --scenario jobs`), with room
# for the larger PNG a noisy photo's cutout makes.
WORK_BYTES = 22
FULL_BYTES = {"mask": 1, "cutout": 10, "replace": 17, "blur": 17}
UPLOAD_GRACE = 2.0  # seconds before an upload's minimum rate applies (first bytes, slow start)


class Refused(Exception):
    """A request the server will not serve; becomes ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


class Refusal(BaseModel):
    """The body of every refusal."""

    error: str = Field(description="What was wrong, and what to do instead.")


class Choice(str, Enum):
    """An option's values; case and surrounding spaces do not matter (they never did)."""

    @classmethod
    def _missing_(cls, value: object) -> Choice | None:
        return cls.__members__.get(value.strip().lower()) if isinstance(value, str) else None


def _choice(name: str, values) -> type[Choice]:
    return Choice(name, [(v, v) for v in values])


ImageFormat = _choice("ImageFormat", ("png", "jpeg", "jpg", "webp"))
TransparentFormat = _choice("TransparentFormat", ("png", "webp"))
Upsample = _choice("Upsample", UPSAMPLE)
Fit = _choice("Fit", ("fill", "fit"))
ColorName = _choice("ColorName", sorted(ImageColor.colormap))  # Pillow's, as CSS's
_BYTE = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# what effects.parse_color reads: a colour name, #rgb(a) or #rrggbb(aa), r,g,b
Color = ColorName | Annotated[str, StringConstraints(
    pattern=rf"^(#([0-9a-fA-F]{{3,4}}|[0-9a-fA-F]{{6}}|[0-9a-fA-F]{{8}})"
            rf"|{_BYTE} *, *{_BYTE} *, *{_BYTE})$")]
Strength = Annotated[float, Field(ge=0.0, le=MAX_STRENGTH, allow_inf_nan=False)]


@dataclass(frozen=True)
class Verb:
    """One image endpoint: what it takes and what it returns."""

    name: str
    formats: tuple[str, ...]  # allowed values of ``format``, the default first
    options: tuple[tuple[str, Any, Any], ...] = ()  # (name, type, default) of its own
    files: tuple[str, ...] = ("file",)  # multipart file fields
    summary: str = ""

    def parameters(self) -> tuple[tuple[str, Any, Any], ...]:
        """Every option as (name, type, default): format, upsample, refine and its own."""
        kind = ImageFormat if "jpeg" in self.formats else TransparentFormat
        return (("format", kind, kind(self.formats[0])),
                ("upsample", Upsample, Upsample(DEFAULT_UPSAMPLE)), ("refine", bool, False),
                *self.options)

    def names(self, what: str) -> tuple[str, ...]:
        return self.files if what == "file field" else tuple(n for n, *_ in self.parameters())


VERBS = {
    "cutout": Verb("cutout", ("png", "webp"), summary="The person on a transparent "
                   "background: RGBA PNG or WebP, the alpha as transparency."),
    "mask": Verb("mask", ("png", "jpeg", "jpg", "webp"), summary="The person's alpha as "
                 "an 8-bit grey image (0 background, 255 person)."),
    "replace": Verb("replace", ("jpeg", "jpg", "png", "webp"),
                    (("bg", Color, effects.DEFAULT_BACKGROUND), ("fit", Fit, Fit("fill"))),
                    ("file", "background"), summary="The person over a colour (bg) or an "
                    "uploaded background image (multipart field background)."),
    "blur": Verb("blur", ("jpeg", "jpg", "png", "webp"),
                 (("strength", Strength, effects.DEFAULT_STRENGTH),),
                 summary="The background blurred, the person sharp."),
}

_PARAM_DOCS = {
    "file": "The photo (JPEG, PNG, WebP, BMP, TIFF or GIF). Or send it as the whole request "
            "body with Content-Type image/*, the options as query parameters.",
    "background": "A background photo, scaled to cover the frame (fit); used instead of bg.",
    "format": "Output format (default: png for cutout and mask, jpeg for replace and blur; "
              "cutout needs png or webp for its transparency).",
    "upsample": "How the model's alpha reaches the photo's size: guided (snaps the edges to "
                "the photo's) or bilinear.",
    "refine": "Deprecated: true is upsample=guided.",
    "bg": f"Background colour: a name (green), #rrggbb or r,g,b (default "
          f"{effects.DEFAULT_BACKGROUND}); an uploaded background replaces it.",
    "fit": "How a background image covers the frame: fill (crop) or fit (pad).",
    "strength": f"Blur radius in tenths of a percent of the short side, 0 to "
                f"{MAX_STRENGTH:g}.",
}
# what a bad value is told, by option ("{name} must be {rule}"); enums say their values
_RULES = {"refine": "true or false", "strength": f"a number from 0 to {MAX_STRENGTH:g}"}


@dataclass
class Job:
    """A validated request, ready for a worker."""

    verb: str
    image: bytes
    image_name: str
    format: str  # a key of _FORMATS
    upsample: str = DEFAULT_UPSAMPLE
    color: tuple[int, int, int] | None = None
    background: bytes | None = None
    fit: str = "fill"
    strength: float = effects.DEFAULT_STRENGTH
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
        memory = WORK_BYTES * work + FULL_BYTES[self.verb] * pixels + len(self.image)
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
        alpha = seg(small, upsample=self.upsample)  # float32 [h, w] in [0, 1]
        del small
        height, width = image.shape[:2] if image is not None else self.size
        if alpha.shape != (height, width):
            if self.verb in ("mask", "cutout"):  # upsampled as uint8: a quarter of the memory
                alpha = effects.mask8(alpha)
            alpha = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_LINEAR)
        return effects.render(self.verb, image, alpha, fit=self.fit, strength=self.strength,
                              background=background if background is not None else self.color)


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

    # /docs (Swagger UI) and /redoc take their scripts and styles from this server
    # (/static-offline-docs), not a CDN, so they work offline; /redoc is ours (below)
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
    app.add_exception_handler(RequestValidationError, _invalid)

    for verb in VERBS.values():
        app.router.add_api_route(
            f"/v1/{verb.name}", _endpoint(verb, pool, max_pixels, timeout), methods=["POST"],
            name=verb.name, summary=verb.summary, description=_HOW_TO_CALL,
            response_class=Response,
            responses=_responses(verb), openapi_extra=_openapi(verb),
            route_class_override=ImageRoute,
        )

    def openapi() -> dict[str, Any]:
        """FastAPI's document, and what it cannot infer: a form takes no other fields, and
        needs ``file`` (optional to FastAPI only because a raw body carries the image)."""
        if app.openapi_schema is None:
            schema = type(app).openapi(app)
            for verb in VERBS.values():
                body = schema["paths"][f"/v1/{verb.name}"]["post"]["requestBody"]
                ref = body["content"]["multipart/form-data"]["schema"]["$ref"]
                form = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
                form["additionalProperties"] = False
                form["required"] = sorted({*form.get("required", ()), "file"})
        return app.openapi_schema

    app.openapi = openapi

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

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        # ReDoc's bundle always draws Redocly's logo from their CDN: the policy keeps the
        # browser on this server (the image fails and ReDoc hides it)
        root = request.scope.get("root_path", "")
        page = get_redoc_html(openapi_url=f"{root}{app.openapi_url}", title="segme - ReDoc",
                              redoc_js_url=f"{root}/static-offline-docs/redoc.standalone.js",
                              redoc_favicon_url=f"{root}/static-offline-docs/favicon.png",
                              with_google_fonts=False)
        page.headers["Content-Security-Policy"] = _SELF_ONLY
        return page

    @app.get("/v1/model", summary="The ModelCard: how to feed the model yourself.")
    async def model_card() -> JSONResponse:
        # card fields at the top level, so ModelCard.from_json(body) works (extras ignored)
        card = asdict(pool.card)
        card["onnx_url"] = "/v1/model.onnx" if model_path.suffix.lower() == ".onnx" else None
        card["pipeline"] = pipeline(pool.card)
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


# a page under this policy loads nothing from other hosts (ReDoc: its styles are inline,
# its schema worker a blob)
_SELF_ONLY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
              "'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:")


def _endpoint(verb: Verb, pool: InferencePool, max_pixels: int, timeout: float):
    async def endpoint(request: Request, **args) -> Response:
        # one image request, its options validated: admit, run on a worker, answer
        job = await _job(request, verb, args)
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

    endpoint.__signature__ = _signature(verb)  # what FastAPI validates and documents
    return endpoint


def _signature(verb: Verb) -> inspect.Signature:
    """The endpoint's typed parameters: its uploads, and each option both as a query
    parameter and as a form field (``_job`` takes the form's when both are given)."""
    param = partial(inspect.Parameter, kind=inspect.Parameter.KEYWORD_ONLY)
    params = [param("request", annotation=Request)]
    for name in verb.files:  # the photo is required, the background not
        # optional to FastAPI: a raw image body is no form field (``_job`` reads the
        # body), and ImageRoute has refused a form without ``file`` already
        params.append(param(f"upload_{name}", default=None,
                            annotation=Annotated[UploadFile, File(alias=name,
                                                                  description=_PARAM_DOCS[name])]))
    for name, kind, default in verb.parameters():
        for where, source in (("query", Query), ("form", Form)):
            params.append(param(f"{where}_{name}", default=default, annotation=Annotated[
                kind, source(alias=name, description=_PARAM_DOCS[name],
                             deprecated=name == "refine" or None)]))
    return inspect.Signature(params)


async def _job(request: Request, verb: Verb, args: dict[str, Any]) -> Job:
    """The validated arguments of ``verb``'s endpoint as a Job; Refused (400) for an empty
    upload."""
    form = await request.form()  # as ImageRoute read it (cached): the fields sent
    opts = {name: args[f"{'form' if name in form else 'query'}_{name}"]
            for name, *_ in verb.parameters()}
    raw = not request.headers.get("content-type", "").lower().startswith("multipart/")
    image_name = "the request body" if raw else "field 'file'"
    image = await (request.body() if raw else args["upload_file"].read())
    if not image:
        raise Refused(400, f"empty {'body' if raw else 'image'}: {image_name} has 0 bytes; "
                      f"{_HOW_TO_SEND}")
    # refine (deprecated) was a second guided filter; guided upsampling is that filter
    upsample = "guided" if opts["refine"] else opts["upsample"].value
    job = Job(verb.name, image, image_name, opts["format"].value, upsample)
    if verb.name == "replace":
        upload = args["upload_background"]
        job.background = await upload.read() if upload is not None else None
        if job.background is not None and not job.background:
            raise Refused(400, "empty image: field 'background' has 0 bytes")
        bg = opts["bg"]  # valid: the schema is what parse_color reads
        job.color = effects.parse_color(bg.value if isinstance(bg, Choice) else bg)
        job.fit = opts["fit"].value
    if verb.name == "blur":
        job.strength = opts["strength"]
    return job


class ImageRoute(APIRoute):
    """The route of an image endpoint: the body is read and its shape checked here, before
    FastAPI validates the options, so a request that is not one of the two shapes the API
    takes gets the reason rather than a list of missing fields.

    A multipart body is parsed with its own limits (two files, 16 fields at most), and
    FastAPI reuses that parse (a request caches its form); a raw ``image/*`` body is read
    here and taken by the endpoint as its image, so both shapes reach one typed endpoint.
    """

    def get_route_handler(self):
        handler = super().get_route_handler()
        verb = VERBS[self.name]

        async def route(request: Request) -> Response:
            await _read_body(request, verb)
            return await handler(request)

        return route


async def _read_body(request: Request, verb: Verb) -> None:
    """Check a request's shape (Refused, 4xx): one image as the body or as the multipart
    field ``file``, known option names, each given once."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    for key in request.query_params:
        if len(request.query_params.getlist(key)) > 1:
            raise Refused(400, f"query parameter {key!r} is given more than once")
        if key not in verb.names("parameter"):
            raise Refused(400, _unknown(verb, key, "parameter"))
    if ctype == "multipart/form-data":
        form = await request.form(max_files=len(verb.files), max_fields=16)
        for key, value in form.multi_items():
            if len(form.getlist(key)) > 1:
                raise Refused(400, f"field {key!r} is given more than once")
            if isinstance(value, Upload):
                if key not in verb.files:
                    raise Refused(400, _unknown(verb, key, "file field"))
            elif key in verb.files:
                raise Refused(400, f"field {key!r} must be an uploaded file, not text "
                              f"(curl: -F {key}=@photo.jpg)")
            elif key not in verb.names("parameter"):
                raise Refused(400, _unknown(verb, key, "parameter"))
            elif not value:  # FastAPI would read it as left out, the default
                raise Refused(400, f"field {key!r} is empty: give a value or leave it out")
        if "file" not in form:
            got = ", ".join(repr(k) for k, v in form.multi_items()
                            if isinstance(v, Upload)) or "none"
            raise Refused(400, f"no image: send it as the multipart file field 'file' "
                          f"(file fields received: {got})")
    elif ctype.startswith(_RAW_TYPES):
        await request.body()  # read under the upload guard; cached for ``_job``
    elif not ctype and not await request.body():
        raise Refused(400, f"empty body: {_HOW_TO_SEND}")
    else:
        raise Refused(415, f"Content-Type {ctype or 'missing'!r} is not an image: "
                      f"{_HOW_TO_SEND}")


def _unknown(verb: Verb, key: str, what: str) -> str:
    return (f"unknown {what} {key!r}; /v1/{verb.name} takes {what}s: "
            f"{', '.join(verb.names(what))}")


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's validation errors as one refusal (400) that names the option and its values."""
    verb = VERBS.get(request.url.path.rsplit("/", 1)[-1])
    error = exc.errors()[0]
    loc = error["loc"]  # ("query" or "body", name[, the member of a union that failed])
    name, value = str(loc[1] if len(loc) > 1 else loc[0]), error.get("input")
    if verb is not None and name == "format":
        fmt = str(value).strip().lower()
        message = (f"{verb.name} output cannot be {fmt}: it has transparency; use "
                   f"format={' or '.join(verb.formats)}" if fmt in _FORMATS else
                   f"unknown format {value!r}; use one of {', '.join(verb.formats)}")
    elif name == "bg":
        message = f"bad bg: not a colour: {value!r}; use a name (green), #rrggbb or r,g,b"
    elif name in _RULES or error["type"] == "enum":
        rule = _RULES.get(name) or error.get("ctx", {}).get("expected", "").replace("'", "")
        message = f"{name} must be {rule}, got {value!r}"
    else:
        message = f"{name}: {error['msg']}"
    return JSONResponse({"error": message}, status_code=400)


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
    binary = {"schema": {"type": "string", "format": "binary"}}
    refusals = {
        400: "Bad input: empty, not an image, truncated, bad option.",
        408: "The body arrived too slowly (the connection is closed).",
        413: "Body or image too large.",
        415: "Neither an image body nor multipart.",
        429: "Too many uploads from your address at once (Retry-After).",
        503: "Busy: every worker and queue place taken, or too many uploads (Retry-After).",
        504: "No result within the server's timeout.",
        # FastAPI would document 422 otherwise; invalid options get 400
        "4XX": "Any other refusal, in the same shape.",
    }
    return {200: {"description": "The result image.", "content": {t: binary for t in types}},
            **{status: {"description": text, "model": Refusal}
               for status, text in refusals.items()}}


def _openapi(verb: Verb) -> dict:
    """The request body's other shape (the image alone, options in the query) and the
    media types of the uploads, which FastAPI does not infer."""
    return {"requestBody": {"content": {
        "multipart/form-data": {"encoding": {f: {"contentType": _IMAGE_TYPES}
                                             for f in verb.files}},
        "image/*": {"schema": {"type": "string", "format": "binary",
                               "description": "The photo alone; options as query parameters."}},
    }}}


def pipeline(card: ModelCard) -> dict[str, Any]:
    """The constants of what the library does around ``card``'s model, beside the card at
    ``/v1/model``: the web page reads them there to do the same (web/src/*.js holds no
    copies; tests/test_browser.py compares the results)."""
    return {"upsample": DEFAULT_UPSAMPLE, "guided_radius": guided_radius(*card.input_size),
            "guided_eps": GUIDED_EPS, "band": list(BAND),
            "blur_min_sigma": effects.BLUR_MIN_SIGMA,
            "blur_shrunk_sigma": effects.BLUR_SHRUNK_SIGMA,
            "blur_min_weight": effects.BLUR_MIN_WEIGHT, "strength": effects.DEFAULT_STRENGTH,
            "max_strength": MAX_STRENGTH, "background": effects.DEFAULT_BACKGROUND}


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
