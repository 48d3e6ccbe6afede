"""The HTTP API (segme.serve) through FastAPI's TestClient on a tiny model, and `segme serve`
once for real: endpoints, inputs, odd images, every limit and every refusal."""

import contextlib
import io
import json
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.error
import urllib.request
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("httpx", reason="httpx (FastAPI's TestClient) is not installed")

from fastapi.testclient import TestClient  # noqa: E402

from segme import effects  # noqa: E402
from segme.cards import ModelCard  # noqa: E402
from segme.segmenter import Segmenter  # noqa: E402
from segme.serve import app as app_module  # noqa: E402
from segme.serve import create_app  # noqa: E402
from segme.serve import pool as pool_module  # noqa: E402
from tests.console import stop  # noqa: E402

SEGME = shutil.which("segme")
H, W = 48, 40  # the test photo: taller than wide, so a lost rotation shows


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The registered test_tiny model as .onnx and .safetensors (a non-ONNX model)."""
    torch = pytest.importorskip("torch")

    from segme.export.onnx import export_onnx
    from segme.export.weights import save_weights
    from segme.models import create_model

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("serve")
    model = create_model("test_tiny")
    save_weights(model, model.card(32), root / "tiny.safetensors")
    return export_onnx(model, root / "tiny.onnx", model.card(32)), root / "tiny.safetensors"


@pytest.fixture(scope="module")
def tiny_onnx(tiny):
    return tiny[0]


@pytest.fixture(scope="module")
def client(tiny_onnx):
    with TestClient(create_app(tiny_onnx, workers=1, threads=1, static_dir=None)) as c:
        yield c


@pytest.fixture(scope="module")
def photo():
    """uint8 [H, W, 3]: a bright ellipse on a textured background."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 120, (H, W, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:H, :W]
    img[((yy - 20) / 14) ** 2 + ((xx - 20) / 10) ** 2 < 1] = (230, 190, 160)
    return img


def encode(array, fmt="JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    (array if isinstance(array, Image.Image) else Image.fromarray(array)).save(buf, fmt, **kw)
    return buf.getvalue()


def decoded(res) -> Image.Image:
    assert res.status_code == 200, res.text
    return Image.open(io.BytesIO(res.content))


def refused(res, status, *words):
    assert res.status_code == status, (res.status_code, res.text)
    assert res.headers["content-type"] == "application/json"
    message = res.json()["error"]
    for w in words:
        assert w in message, message
    return message


def multipart(client, verb, data: bytes, **fields):
    return client.post(f"/v1/{verb}", files={"file": ("photo.jpg", data, "image/jpeg")},
                       data=fields)


def raw(client, verb, data: bytes, ctype="image/jpeg", **params):
    return client.post(f"/v1/{verb}", content=data, params=params,
                       headers={"content-type": ctype})


# endpoints ---------------------------------------------------------------------------------

@pytest.mark.parametrize("send", [multipart, raw])
@pytest.mark.parametrize("verb,extra,ctype,mode", [
    ("cutout", {}, "image/png", "RGBA"),
    ("mask", {}, "image/png", "L"),
    ("replace", {"bg": "green"}, "image/jpeg", "RGB"),
    ("blur", {}, "image/jpeg", "RGB"),
    ("blur", {"strength": "40"}, "image/jpeg", "RGB"),
])
def test_verbs_answer_an_image_of_the_input_size(client, photo, send, verb, extra, ctype, mode):
    res = send(client, verb, encode(photo), **extra)
    img = decoded(res)
    assert res.headers["content-type"] == ctype
    assert img.size == (W, H) and img.mode == mode


def test_outputs_match_the_library(client, photo, tiny_onnx):
    """The server's outputs are the library's (``effects.render``), bit for bit (PNG is
    lossless); upsample picks the upsampling, and the deprecated refine means guided."""
    data = encode(photo, "PNG")
    seg = Segmenter(tiny_onnx, threads=1)
    alpha = seg(photo)
    mask = np.asarray(decoded(raw(client, "mask", data, "image/png")))
    np.testing.assert_array_equal(mask, effects.mask8(alpha))
    rgba = np.asarray(decoded(multipart(client, "cutout", data)))
    np.testing.assert_array_equal(rgba, effects.cutout(photo, alpha))
    for params, upsample in (({"upsample": "bilinear"}, "bilinear"), ({"refine": "true"}, "guided"),
                             ({"refine": "true", "upsample": "bilinear"}, "guided")):
        got = np.asarray(decoded(raw(client, "mask", data, "image/png", **params)))
        np.testing.assert_array_equal(got, effects.mask8(seg(photo, upsample=upsample)))
    assert not np.array_equal(effects.mask8(seg(photo, upsample="bilinear")), mask)
    for verb, params in (("replace", {"bg": "0,177,64"}), ("replace", {}),
                         ("blur", {"strength": "40"})):
        out = np.asarray(decoded(raw(client, verb, data, "image/png", format="png", **params)))
        np.testing.assert_array_equal(out, effects.render(
            verb, photo, alpha, background=params.get("bg"), strength=40))


@pytest.mark.parametrize("verb,fmt,ctype", [
    ("cutout", "webp", "image/webp"), ("mask", "jpeg", "image/jpeg"),
    ("replace", "png", "image/png"), ("blur", "webp", "image/webp"), ("blur", "JPG", "image/jpeg"),
])
def test_format_parameter_picks_the_output(client, photo, verb, fmt, ctype):
    extra = {"bg": "#102030"} if verb == "replace" else {}
    res = multipart(client, verb, encode(photo), format=fmt, **extra)  # as a form field
    assert decoded(res).size == (W, H) and res.headers["content-type"] == ctype
    res = raw(client, verb, encode(photo), format=fmt, **extra)  # as a query parameter
    assert decoded(res).size == (W, H) and res.headers["content-type"] == ctype
    if verb == "cutout":
        assert decoded(res).mode == "RGBA"


@pytest.mark.parametrize("fit", ["fill", "fit"])
def test_replace_with_an_uploaded_background(client, photo, fit):
    background = np.zeros((30, 90, 3), np.uint8)
    background[:] = (255, 0, 0)
    res = client.post("/v1/replace", data={"fit": fit, "format": "png"},
                      files={"file": ("p.jpg", encode(photo)),
                             "background": ("bg.png", encode(background, "PNG"))})
    out = np.asarray(decoded(res))
    assert out.shape == (H, W, 3)
    assert (out[..., 0] > out[..., 1]).any()  # red shows wherever the alpha is low


# odd images --------------------------------------------------------------------------------

def odd_images(photo):
    img = Image.fromarray(photo)
    deep = Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257)
    return {
        "16-bit png": encode(deep, "PNG"),
        "cmyk jpeg": encode(img.convert("CMYK"), "JPEG"),
        "palette png": encode(img.convert("P"), "PNG"),
        "rgba png": encode(img.convert("RGBA"), "PNG"),
        "grey jpeg": encode(img.convert("L"), "JPEG"),
        "1-bit png": encode(img.convert("1"), "PNG"),
        "webp": encode(img, "WEBP"),
        "bmp": encode(img, "BMP"),
        "tiff": encode(img, "TIFF"),
        "gif": encode(img, "GIF"),
    }


@pytest.mark.parametrize("kind", ["16-bit png", "cmyk jpeg", "palette png", "rgba png",
                                  "grey jpeg", "1-bit png", "webp", "bmp", "tiff", "gif"])
def test_odd_images_are_read_like_files(client, photo, kind, tmp_path):
    data = odd_images(photo)[kind]
    out = np.asarray(decoded(multipart(client, "mask", data)))
    assert out.shape == (H, W)
    path = tmp_path / "odd"  # the same bytes as a file through the CLI's reader
    path.write_bytes(data)
    from segme.io.images import read_image

    np.testing.assert_array_equal(out, effects.mask8(Segmenter(client.app.state.pool.model,
                                                               threads=1)(read_image(path))))


def test_exif_rotation_is_applied(client, photo):
    """An EXIF orientation 6 JPEG stores the photo on its side; every output is upright."""
    exif = Image.Exif()
    exif[0x0112] = 6  # display: rotate 90 degrees clockwise
    stored = np.ascontiguousarray(np.rot90(photo, 1))  # [W, H]: what a sideways camera wrote
    data = encode(stored, "JPEG", exif=exif.tobytes(), quality=100)
    upright = np.asarray(Image.open(io.BytesIO(data)).transpose(Image.Transpose.ROTATE_270))
    assert upright.shape == photo.shape
    seg = Segmenter(client.app.state.pool.model, threads=1)
    mask = np.asarray(decoded(raw(client, "mask", data)))
    np.testing.assert_array_equal(mask, effects.mask8(seg(upright)))
    rgba = decoded(multipart(client, "cutout", data))
    assert rgba.size == (W, H) and "exif" not in rgba.info  # no second rotation downstream
    for verb, extra in (("replace", {"bg": "white"}), ("blur", {})):
        assert decoded(raw(client, verb, data, **extra)).size == (W, H)


# refusals ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name,request_kwargs,status,words", [
    ("empty body", dict(content=b""), 400, ["empty body"]),
    ("empty image body", dict(content=b"", headers={"content-type": "image/jpeg"}), 400,
     ["empty body", "0 bytes"]),
    ("empty upload", dict(files={"file": ("a.jpg", b"")}), 400, ["empty image", "'file'"]),
    ("not an image", dict(content=b"hello, world" * 10, headers={"content-type": "image/png"}),
     400, ["not an image"]),
    ("text instead of json", dict(content=b"{}", headers={"content-type": "application/json"}),
     415, ["application/json", "Content-Type image/jpeg"]),
    ("no content type", dict(content=b"\xff\xd8\xff"), 415, ["missing"]),
    ("wrong field", dict(files={"image": ("a.jpg", b"\xff\xd8")}), 400,
     ["unknown file field 'image'", "file"]),
    ("path instead of file", dict(files={"file": (None, "/etc/passwd")}), 400,
     ["'file' must be an uploaded file"]),
    ("no file at all", dict(files={"format": (None, "png")}), 400, ["no image", "none"]),
    ("two files", dict(files=[("file", ("a.jpg", b"1")), ("file", ("b.jpg", b"2"))]), 400,
     ["Too many files"]),
])
def test_bad_requests_get_a_json_4xx(client, name, request_kwargs, status, words):
    refused(client.post("/v1/mask", **request_kwargs), status, *words)


def test_truncated_jpeg_is_named(client, photo):
    data = encode(photo)
    refused(raw(client, "cutout", data[: len(data) // 2]), 400, "request body", "truncated")
    refused(multipart(client, "cutout", data[: len(data) // 2]), 400, "field 'file'",
            "truncated")


@pytest.mark.parametrize("verb,params,words", [
    ("replace", {"bg": "nocolour"}, ["bad bg", "nocolour", "#rrggbb"]),
    ("replace", {"bg": "300,0,0"}, ["bad bg"]),
    ("replace", {"bg": "red", "fit": "stretch"}, ["fit must be fill or fit"]),
    ("mask", {"upsample": "bicubic"}, ["upsample must be guided or bilinear", "'bicubic'"]),
    ("blur", {"strength": "strong"}, ["strength must be a number", "'strong'"]),
    ("blur", {"strength": "-1"}, ["strength must be a number from 0 to 100"]),
    ("blur", {"strength": "nan"}, ["strength"]),
    ("blur", {"strength": "1e9"}, ["strength"]),
    ("mask", {"format": "gif"}, ["unknown format 'gif'", "png"]),
    ("cutout", {"format": "jpeg"}, ["transparency", "png or webp"]),
    ("mask", {"refine": "maybe"}, ["refine must be true or false"]),
    ("mask", {"strength": "3"}, ["unknown parameter 'strength'", "format, upsample, refine"]),
    ("blur", {"path": "/etc/passwd"}, ["unknown parameter 'path'"]),
])
def test_bad_options_are_named(client, photo, verb, params, words):
    refused(raw(client, verb, encode(photo), **params), 400, *words)
    refused(multipart(client, verb, encode(photo), **params), 400, *words)


def test_an_uploaded_background_replaces_the_colour(client, photo):
    """bg is the colour where no background is uploaded (a green screen by default): the
    document cannot say "one or the other" across the query and the form, so neither
    combination is refused."""
    red = np.full((H, W, 3), (255, 0, 0), np.uint8)
    res = client.post("/v1/replace", data={"bg": "blue", "format": "png"},
                      files={"file": ("a.png", encode(photo, "PNG")),
                             "background": ("b.png", encode(red, "PNG"))})
    assert (np.asarray(decoded(res)).reshape(-1, 3).max(0) == (255, 255, 255)).sum() < 3
    alpha = Segmenter(client.app.state.pool.model, threads=1)(photo)
    for bg, fields in ((red, {"bg": "blue"}), ((0, 177, 64), {})):
        res = client.post("/v1/replace", data={"format": "png", **fields},
                          files={"file": ("a.png", encode(photo, "PNG")),
                                 **({"background": ("b.png", encode(red, "PNG"))}
                                    if fields else {})})
        np.testing.assert_array_equal(np.asarray(decoded(res)),
                                      effects.replace_background(photo, alpha, bg))
    res = client.post("/v1/replace", files={"file": ("a.jpg", encode(photo)),
                                            "background": ("b.jpg", b"nonsense")})
    refused(res, 400, "field 'background'", "not an image")
    res = client.post("/v1/replace", files={"file": ("a.jpg", encode(photo)),
                                            "background": ("b.jpg", b"")})
    refused(res, 400, "empty image", "'background'")


def test_unknown_routes_and_methods_are_json(client):
    refused(client.get("/v1/nothing"), 404)
    refused(client.get("/v1/cutout"), 405)


# limits ------------------------------------------------------------------------------------

def test_body_larger_than_max_bytes_is_413(tiny_onnx, photo):
    data = encode(photo, "PNG")
    with TestClient(create_app(tiny_onnx, workers=1, max_bytes=len(data) - 1)) as c:
        refused(raw(c, "mask", data, "image/png"), 413, "larger than")
        refused(multipart(c, "mask", data), 413, "larger than")
        chunks = (data[i: i + 512] for i in range(0, len(data), 512))  # no Content-Length
        res = c.post("/v1/mask", content=chunks, headers={"content-type": "image/png"})
        refused(res, 413, "larger than")
        small = encode(photo[:20, :20], "PNG")
        assert decoded(raw(c, "mask", small, "image/png")).size == (20, 20)
        assert c.get("/healthz").json()["queue_depth"] == 0  # refusals held no slot


def test_image_with_too_many_pixels_is_413(tiny_onnx, photo):
    with TestClient(create_app(tiny_onnx, workers=1, max_pixels=H * W - 1)) as c:
        refused(raw(c, "mask", encode(photo)), 413, f"{W}x{H}", "megapixels")
        small = encode(photo[:20, :20])
        assert decoded(raw(c, "mask", small)).size == (20, 20)
        res = c.post("/v1/replace", files={"file": ("a.jpg", small),
                                           "background": ("b.jpg", encode(photo))})
        refused(res, 413, "field 'background'")


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height RGB pixels (its data is a stub)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("width,height", [(10_000, 5_000), (100_000, 100_000)])
def test_decompression_bombs_are_refused_from_the_header(client, width, height):
    """50 and 10,000 megapixels (150 MB and 30 GB as RGB) in a few hundred bytes: refused
    before any decoding (the default limit is 40 megapixels; PIL's own is 179)."""
    refused(raw(client, "mask", png_claiming(width, height), "image/png"), 413, "pixels")


@pytest.fixture
def gate(monkeypatch):
    """Inference that waits for ``gate.set()``: slow on demand, deterministically."""
    started, gate = threading.Event(), threading.Event()

    class GatedSegmenter(Segmenter):
        def __call__(self, image, **kw):
            started.set()
            if not gate.wait(30):
                raise RuntimeError("the test never opened the gate")
            return super().__call__(image, **kw)

    monkeypatch.setattr(pool_module, "Segmenter", GatedSegmenter)
    gate.started = started
    yield gate
    gate.set()  # never leave a worker blocked


def wait_until(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def test_slow_inference_times_out_with_504(tiny_onnx, photo, gate):
    with TestClient(create_app(tiny_onnx, workers=1, timeout=0.3)) as c:
        t0 = time.monotonic()
        refused(raw(c, "mask", encode(photo)), 504, "no result within 0.3 s")
        assert time.monotonic() - t0 < 5
        health = c.get("/healthz").json()
        assert health["running"] == 1  # the stuck job still holds its worker...
        gate.set()
        wait_until(lambda: c.get("/healthz").json()["running"] == 0)
        assert decoded(raw(c, "mask", encode(photo))).size == (W, H)  # ...and then frees it


def test_full_queue_gets_503_at_once(tiny_onnx, photo, gate):
    with TestClient(create_app(tiny_onnx, workers=1, queue=1, timeout=30)) as c:
        results = {}

        def post(name):
            results[name] = raw(c, "cutout", encode(photo))

        first = threading.Thread(target=post, args=("first",))
        first.start()
        assert gate.started.wait(10)  # the only worker is busy...
        second = threading.Thread(target=post, args=("second",))
        second.start()
        wait_until(lambda: c.get("/healthz").json()["queue_depth"] == 1)  # ...one waits
        t0 = time.monotonic()
        res = raw(c, "cutout", encode(photo))
        assert time.monotonic() - t0 < 5
        refused(res, 503, "busy", "retry")
        assert res.headers["retry-after"].isdigit()
        health = c.get("/healthz").json()
        assert (health["running"], health["queue_depth"], health["queue_limit"]) == (1, 1, 1)
        gate.set()
        first.join(30)
        second.join(30)
        assert decoded(results["first"]).size == decoded(results["second"]).size == (W, H)
        wait_until(lambda: c.get("/healthz").json()["queue_depth"] == 0)


def test_models_load_once_per_worker(tiny_onnx, photo, monkeypatch):
    made = []

    class CountedSegmenter(Segmenter):
        def __init__(self, *a, **kw):
            made.append(1)
            super().__init__(*a, **kw)

    monkeypatch.setattr(pool_module, "Segmenter", CountedSegmenter)
    with TestClient(create_app(tiny_onnx, workers=3)) as c:
        for _ in range(4):
            assert decoded(raw(c, "mask", encode(photo))).size == (W, H)
    assert len(made) == 3


def test_memory_budget_runs_large_jobs_one_at_a_time(tiny_onnx, photo, gate):
    """Two workers, a budget smaller than one job: the second waits for memory, not on a
    worker, and both finish; the budget is all given back."""
    with TestClient(create_app(tiny_onnx, workers=2, memory=1, timeout=30)) as c:
        results = []
        posts = [threading.Thread(target=lambda: results.append(raw(c, "mask", encode(photo))))
                 for _ in range(2)]
        for t in posts:
            t.start()
        assert gate.started.wait(10)
        wait_until(lambda: c.get("/healthz").json()["queue_depth"] == 1)
        time.sleep(0.2)
        health = c.get("/healthz").json()
        assert (health["running"], health["queue_depth"]) == (1, 1)  # a worker is idle
        gate.set()
        for t in posts:
            t.join(30)
        assert [decoded(r).size for r in results] == [(W, H), (W, H)]
        wait_until(lambda: c.get("/healthz").json()["memory_mb"] == 0)


def one_bit_png(size: int) -> bytes:
    """A 1-bit PNG, ``size`` pixels square, a white bar on black: a few kB for megapixels."""
    img = Image.new("1", (size, size))
    img.paste(1, (size // 3, size // 6, 2 * size // 3, size))
    return encode(img, "PNG")


@pytest.mark.parametrize("verb", ["mask", "cutout"])
def test_large_photos_are_segmented_at_the_working_size(tiny_onnx, verb, monkeypatch):
    """A 9 MP photo (a 5 kB 1-bit PNG) over a 2.25 MP working size: the model and the
    guided upsampling see it at half size; the output keeps the photo's size. What numpy
    allocates stays inside the job's memory estimate, and /mask never holds the photo."""
    monkeypatch.setattr(app_module, "WORK_PIXELS", 2_250_000)
    seen = []

    class Seen(Segmenter):
        def __call__(self, image, **kw):
            seen.append(image.shape)
            return super().__call__(image, **kw)

    data, side = one_bit_png(3000), 3000
    job = app_module.Job(verb, data, "field 'file'", "png")
    estimate = job.prepare(max_pixels=40_000_000)
    tracemalloc.start()
    try:
        out = job.render(Seen(tiny_onnx, threads=1), max_pixels=40_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert job.shrink == 2 and seen == [(side // 2, side // 2, 3)]
    assert out.shape == ((side, side) if verb == "mask" else (side, side, 4))
    assert peak <= estimate
    if verb == "mask":  # the old path held 20 bytes a pixel: photo, float alpha, guide planes
        assert peak < 6 * side * side, peak / side**2


def test_shrunk_decode_matches_a_box_filter():
    """decode_image(shrink=k) is ceil(H/k) x ceil(W/k) (PNG: Image.reduce; JPEG: decoded
    small) and close to the full decode box-filtered."""
    from segme.io.images import decode_image, image_size

    rng = np.random.default_rng(1)
    smooth = Image.fromarray(rng.integers(0, 255, (6, 5, 3), dtype=np.uint8)).resize(
        (250, 301), Image.Resampling.BICUBIC)
    for fmt in ("PNG", "JPEG"):
        data = encode(smooth, fmt)
        full = decode_image(data)
        assert image_size(data) == full.shape[:2] == (301, 250)
        for k in (2, 3, 4):
            small = decode_image(data, shrink=k)
            assert small.shape == (-(-301 // k), -(-250 // k), 3), (fmt, k)
            box = np.asarray(Image.fromarray(full).reduce(k), np.float32)
            assert np.abs(small - box).mean() < 3, (fmt, k)


def test_image_size_is_the_decoded_size_from_the_header(photo):
    """EXIF orientation included: in a JPEG's header, and in a PNG's eXIf chunk after its
    pixels (where Pillow would decode the image to read it)."""
    from segme.io.images import decode_image, image_size

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees: height and width swap
    turned = exif.tobytes()[6:]  # a PNG's eXIf chunk holds the TIFF structure alone
    png = encode(photo, "PNG")
    iend = png.rindex(b"IEND") - 4
    late = png[:iend] + struct.pack(">I", len(turned)) + b"eXIf" + turned + struct.pack(
        ">I", zlib.crc32(b"eXIf" + turned)) + png[iend:]
    for data in (encode(photo, "JPEG", exif=exif.tobytes()), late):
        assert image_size(data) == decode_image(data).shape[:2] == (W, H)
        assert decode_image(data, shrink=3).shape[:2] == (-(-W // 3), -(-H // 3))


def test_valid_photos_above_pils_bomb_limit_warn_nothing(tiny_onnx, photo, monkeypatch):
    """A photo over PIL's MAX_IMAGE_PIXELS (89 MP; here half the test photo) but within the
    server's limit: no DecompressionBombWarning from two workers decoding at once (each
    silences it with catch_warnings, which swaps process-wide filters: they take turns)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", H * W // 2 + 1)
    with TestClient(create_app(tiny_onnx, workers=2, threads=1, static_dir=None)) as c:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning in a worker fails its decode: 400
            with ThreadPoolExecutor(4) as ex:
                results = list(ex.map(lambda fmt: raw(c, "cutout", encode(photo, fmt)),
                                      ["PNG", "JPEG", "TIFF", "WEBP"] * 4))
    assert [r.status_code for r in results] == [200] * 16, results[0].text
    monkeypatch.undo()  # PIL's own limit back, for the test's own decoding
    assert {decoded(r).size for r in results} == {(W, H)}


@pytest.mark.parametrize("kwargs,words", [
    ({"workers": 0}, "workers"), ({"queue": -1}, "queue"), ({"max_bytes": 0}, "max_bytes"),
    ({"timeout": 0}, "timeout"), ({"threads": 0}, "threads"), ({"memory": 0}, "memory"),
    ({"upload_timeout": 0}, "upload_timeout"), ({"min_upload_rate": -1}, "min_upload_rate"),
    ({"max_uploads": 0}, "max_uploads"), ({"max_uploads_per_client": 0}, "per_client"),
])
def test_bad_settings_are_refused_at_startup(tiny_onnx, kwargs, words):
    with pytest.raises(ValueError, match=words):
        create_app(tiny_onnx, **kwargs)


def test_missing_model_fails_at_startup(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        create_app(tmp_path / "missing.onnx")


# model, health, pages ----------------------------------------------------------------------

def test_healthz(client):
    res = client.get("/healthz")
    assert res.status_code == 200
    health = res.json()
    assert health["ready"] is True and health["arch"] == "test_tiny"
    assert health["input_size"] == [32, 32]
    assert health["workers"] == 1 and health["queue_depth"] == 0 and health["running"] == 0


def test_model_card_and_onnx_file(client, tiny_onnx):
    res = client.get("/v1/model")
    body = res.json()
    card = ModelCard.from_json(json.dumps(body))
    assert card == Segmenter(tiny_onnx).card
    assert body["input_size"] == [32, 32] and len(body["mean"]) == len(body["std"]) == 3
    assert body["color_order"] == "rgb" and body["onnx_url"] == "/v1/model.onnx"
    res = client.get(body["onnx_url"])
    assert res.status_code == 200 and res.headers["content-type"] == "application/octet-stream"
    assert res.content == tiny_onnx.read_bytes()


def test_no_onnx_download_for_another_model_format(tiny, photo):
    with TestClient(create_app(tiny[1], workers=2, static_dir=None)) as c:  # .safetensors
        assert c.get("/v1/model").json()["onnx_url"] is None
        refused(c.get("/v1/model.onnx"), 404, "not ONNX", "segme export")
        assert decoded(raw(c, "mask", encode(photo))).size == (W, H)  # torch backend serves


def test_index_page_with_and_without_static_folder(tiny_onnx, tmp_path, client):
    page = client.get("/")
    assert page.status_code == 200 and 'href="/docs"' in page.text
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/cutout", "/v1/mask", "/v1/replace", "/v1/blur", "/healthz"} <= set(paths)
    (tmp_path / "index.html").write_text("<title>demo page</title>")
    (tmp_path / "app.js").write_text("console.log(1)")
    (tmp_path.parent / "secret.txt").write_text("not for clients")
    with TestClient(create_app(tiny_onnx, workers=1, static_dir=tmp_path)) as c:
        assert "demo page" in c.get("/").text
        assert c.get("/static/app.js").text == "console.log(1)"
        assert c.get("/static/../secret.txt").status_code == 404
        assert c.get("/static/%2e%2e/secret.txt").status_code == 404


def test_docs_page_loads_nothing_from_other_hosts(client):
    html = client.get("/docs")
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    assert not re.search(r"(https?:)?//", html.text), "the page names another host"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
    assert {a.rsplit(".", 1)[-1] for a in assets} >= {"js", "css"}, assets
    for url in assets:  # the script, the style and the icon all come from this server
        res = client.get(url)
        assert res.status_code == 200 and res.content, url
    assert any("SwaggerUIBundle" in client.get(a).text for a in assets if a.endswith(".js"))
    spec = re.search(r"url: '(/[^']+)'", html.text).group(1)  # what the page renders
    paths = client.get(spec).json()["paths"]
    assert {"/v1/cutout", "/v1/mask", "/v1/replace", "/v1/blur", "/healthz"} <= set(paths)
    redoc = client.get("/redoc")  # its bundle draws a logo from a CDN: the policy blocks it
    assert redoc.status_code == 200 and not re.search(r"(https?:)?//", redoc.text)
    assert "img-src 'self' data:" in redoc.headers["content-security-policy"]
    for url in re.findall(r'(?:src|href)="([^"]+)"', redoc.text):
        assert client.get(url).status_code == 200, url


# the real server ---------------------------------------------------------------------------

@contextlib.contextmanager
def serving(*args):
    """``segme serve --port 0 ARGS`` as a subprocess; yields (base URL, port)."""
    proc = subprocess.Popen([SEGME, "serve", "--port", "0", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # its log, a line a request, is read and dropped: a full pipe would stop the server
    drain = threading.Thread(target=proc.stdout.read, daemon=True)
    try:
        lines, found = [], None
        while not found:
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            assert ready, f"segme serve printed no address within 60 s: {lines}"
            lines.append(proc.stdout.readline())
            assert lines[-1], (lines, proc.poll())
            found = re.search(r"http://127\.0\.0\.1:(\d+)", lines[-1])
        drain.start()
        url, port = found.group(0), int(found.group(1))
        deadline = time.monotonic() + 30
        while True:  # the socket listens before uvicorn accepts: retry briefly
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=10).close()
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        yield url, port
    finally:
        stop(proc)
        if drain.is_alive():
            drain.join(10)
        proc.stdout.close()


# slow clients: 2 s of grace, then 1 kB/s at least; 4 s in all; 1 worker and no queue
UPLOAD_LIMITS = ("--workers", 1, "--threads", 1, "--queue", 0, "--upload-timeout", 4,
                 "--min-upload-rate", 1, "--max-uploads", 8, "--max-uploads-per-client", 7)


@pytest.fixture(scope="module")
def server(tiny_onnx):
    if SEGME is None:
        pytest.skip("the segme console script is not installed")
    with serving("--model", tiny_onnx, *UPLOAD_LIMITS) as (url, port):
        yield url, port


def health(url) -> dict:
    with urllib.request.urlopen(f"{url}/healthz", timeout=10) as res:
        return json.loads(res.read())


def post(url, data: bytes, verb="cutout"):
    req = urllib.request.Request(f"{url}/v1/{verb}", data=data, method="POST",
                                 headers={"Content-Type": "image/jpeg"})
    with urllib.request.urlopen(req, timeout=10) as res:
        return res.status, res.headers["Content-Type"], res.read()


def upload(port: int, length: int, rate: float = 0.0, head: bytes = b"", source="127.0.0.1"):
    """POST /v1/mask declaring Content-Length ``length``, then ``head``, then the rest at
    ``rate`` bytes a second (0: nothing more); (status, seconds to the answer, the answer).
    The answer is read until the server closes the connection (a timeout if it does not)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10,
                                  source_address=(source, 0)) as s:
        s.sendall(b"POST /v1/mask HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (length, head))
        t0, sent = time.monotonic(), len(head)
        while not select.select([s], [], [], 0.05)[0]:
            assert time.monotonic() - t0 < 20, "no answer within 20 s"
            due = min(length, len(head) + int(rate * (time.monotonic() - t0)))
            if due > sent:
                s.sendall(b"x" * (due - sent))
                sent = due
        seconds, answer = time.monotonic() - t0, b""
        try:
            while chunk := s.recv(65536):  # b"": the server closed the connection
                answer += chunk
        except ConnectionResetError:
            # body bytes that crossed the server's close are answered with a reset, which
            # may arrive before its 408 is read: closed all the same (status None)
            pass
    return (int(answer.split()[1]) if answer else None), seconds, answer


def test_segme_serve_answers_real_http(server, photo):
    status, ctype, body = post(server[0], encode(photo))
    assert status == 200 and ctype == "image/png"
    img = Image.open(io.BytesIO(body))
    assert img.size == (W, H) and img.mode == "RGBA"


def test_slow_uploads_time_out_and_hold_no_place(server, photo):
    """Idle and trickling uploads hold no worker or queue place (one of each here, and a
    normal request is served meanwhile); they get 408 and a closed connection: after 2 s
    below 1 kB/s, or at 4 s for one fast enough but too long. One address may have 7
    uploads going (then 429), the server 8 (then 503)."""
    url, port = server
    slow = [(1000, 0), (1000, 0), (1000, 0), (1000, 5), (1000, 5), (20_000, 2000)]
    with ThreadPoolExecutor(len(slow) + 2) as ex:
        pending = [ex.submit(upload, port, n, rate) for n, rate in slow]
        wait_until(lambda: health(url)["uploading"] == len(slow))
        status, _, _ = post(url, encode(photo))  # 1 worker, no queue: it needs the place
        assert status == 200
        pending.append(ex.submit(upload, port, 1000))  # the 7th from this address
        wait_until(lambda: health(url)["uploading"] == len(slow) + 1)
        status, seconds, answer = upload(port, 1000)
        assert status == 429 and seconds < 1 and b"connection: close" in answer, answer
        if bindable("127.0.0.2") and bindable("127.0.0.3"):  # loopback is 127.0.0.0/8 on Linux
            pending.append(ex.submit(upload, port, 1000, source="127.0.0.2"))  # the 8th
            wait_until(lambda: health(url)["uploading"] == 8)
            status, seconds, answer = upload(port, 1000, source="127.0.0.3")
            assert status == 503 and seconds < 1 and b"retry-after: 1" in answer, answer
        results = [f.result() for f in pending]
    rates = [rate for _, rate in slow] + [0] * (len(results) - len(slow))
    for rate, (status, seconds, answer) in zip(rates, results):
        assert (status == 408 and b"too slow" in answer) or (status is None and rate), answer
        assert (3.5 < seconds < 8) if rate == 2000 else (1.5 < seconds < 3.9), (rate, seconds)
    assert health(url)["uploading"] == 0
    assert post(url, encode(photo))[0] == 200


def bindable(address: str) -> bool:
    with socket.socket() as s:
        try:
            s.bind((address, 0))
            return True
        except OSError:
            return False


def test_declared_length_over_the_limit_gets_413_at_once(server):
    """Content-Length 1 TB and three bytes: 413 within a second, nothing read, the
    connection closed (the old body limit read and discarded up to 80 MB first)."""
    status, seconds, answer = upload(server[1], 999_999_999_999, head=b"abc")
    assert status == 413 and seconds < 1 and b"larger than the 20 MB" in answer, answer
    assert health(server[0])["uploading"] == 0


@pytest.mark.skipif(SEGME is None, reason="the segme console script is not installed")
def test_serve_mistakes_give_one_line(tmp_path):
    import socket

    proc = subprocess.run([SEGME, "serve", "--model", str(tmp_path / "none.onnx")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"error: model file not found: {tmp_path / 'none.onnx'}"), proc.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([SEGME, "serve", "--port", str(port)], capture_output=True,
                              text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: cannot listen on 127.0.0.1:") and "--port" in lines[0]


def test_serving_an_onnx_model_never_imports_torch(tiny_onnx):
    code = ("import sys; import segme.cli.serve; from segme.serve import create_app; "
            f"create_app({str(tiny_onnx)!r}, workers=1); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_missing_serve_extra_names_the_pip_command():
    code = ("import sys; sys.modules['fastapi'] = None; sys.argv = ['segme', 'serve']; "
            "from segme.cli.main import main; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and 'pip install "segme[serve]"' in lines[0]
