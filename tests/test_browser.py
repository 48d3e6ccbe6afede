"""The web page end to end: headless Chromium, driven by Playwright, against the real `segme serve`.

The server runs the shipped model (no --model), which is what the page really runs. The tests
feed the page a portrait (scikit-image's astronaut, else a synthetic one) through its file
input and through a fake webcam playing a Y4M clip, in the browser (WASM), on the server
(`?backend=server`) and after the in-browser model failed to start (the fallback). Each checks
that a segmentation was drawn: the page's mean alpha must be a real split of person and
background, and in the browser must match what the Python Segmenter finds on the same pixels
with the same model file, so the page's resize, normalisation and tensor layout are right, not
only "something was drawn". And the page's mask and pictures (web/src/postprocess.js,
effects.js) must be the Python library's (`Segmenter` + `segme.effects.render`) on the same
photo, in both modes, within the tolerances of TOLERANCES. Screenshots go to a temporary
folder whose path is printed (see it with `pytest -s` or in the -rA summary).

Needs: Debian's chromium (/usr/bin/chromium), `pip install playwright` (no browser download),
the server extra, and the built page (`cd web && npm ci && npm run build`).
"""

import base64
import io
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import segme
from segme.data.synthetic import synthetic_pair
from tests.console import stop

CHROMIUM = Path("/usr/bin/chromium")
PAGE = Path(segme.__file__).parent / "serve" / "static" / "index.html"
SEGME = shutil.which("segme")


def why_skip() -> str | None:
    """What this machine lacks for these tests, or None."""
    if find_spec("playwright") is None:
        return "playwright is not installed: pip install playwright"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: apt-get install -y chromium"
    if not PAGE.exists():
        return f"the web page is not built ({PAGE} is missing): cd web && npm ci && npm run build"
    if find_spec("fastapi") is None or find_spec("uvicorn") is None:
        return 'the server\'s dependencies are missing: pip install -e ".[serve]"'
    if SEGME is None:
        return "the segme console script is not installed"
    return None


WHY_SKIP = why_skip()
pytestmark = pytest.mark.skipif(WHY_SKIP is not None, reason=str(WHY_SKIP))

# What this closed network needs (no Google services to reach) plus a fake camera that plays
# a file, and its permission prompt answered yes.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
WAIT_MS = 30_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 10) -> None:
    """Write uint8 [H, W, 3] RGB frames (H, W even) as an uncompressed 4:2:0 Y4M video."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())  # Y, U, V planes


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("browser")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("screenshots")
    print(f"\nbrowser screenshots: {path}")
    return path


def person() -> np.ndarray:
    """uint8 [H, W, 3] RGB: scikit-image's astronaut (a real portrait) where it is installed,
    else segme's synthetic head and shoulders."""
    try:
        from skimage import data

        return data.astronaut()  # 512 x 512, bundled with scikit-image
    except Exception:  # not installed, or a build that fetches its data: draw one instead
        return synthetic_pair(np.random.default_rng(0), 360, 480)[0]


@pytest.fixture(scope="module")
def portrait(work):
    """The photo as PNG (lossless: the page and Python see the same pixels), the same as an
    array, and a short webcam clip of the same person swaying, as Y4M."""
    image = person()
    photo = work / "portrait.png"
    Image.fromarray(image).save(photo)
    height = round(160 * image.shape[0] / image.shape[1]) * 2  # width 320; Y4M wants even sizes
    small = cv2.resize(image, (320, height), interpolation=cv2.INTER_AREA)
    clip = [np.roll(small, round(8 * np.sin(i / 3)), axis=1) for i in range(20)]
    video = work / "webcam.y4m"
    write_y4m(video, clip)
    return photo, image, video


@pytest.fixture(scope="module")
def backdrop(work) -> Path:
    """A background photo: a sunset-like gradient."""
    y = np.linspace(0, 1, 240, dtype=np.float32)[:, None, None]
    top, bottom = np.float32([40, 60, 160]), np.float32([250, 170, 80])
    image = np.broadcast_to(top + (bottom - top) * y, (240, 400, 3)).astype(np.uint8)
    path = work / "backdrop.png"
    Image.fromarray(image).save(path)
    return path


@pytest.fixture(scope="module")
def server(work):
    """`segme serve` with the shipped model on a free port; yields its base URL."""
    port = free_port()
    log = open(work / "serve.log", "w+")
    proc = subprocess.Popen([SEGME, "serve", "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"segme serve exited with {proc.returncode}:\n{log.read()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/v1/model", timeout=2) as res:
                    if res.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("segme serve did not answer GET /v1/model within 60 s")
            time.sleep(0.25)
        yield url
    finally:
        stop(proc)
        log.close()


@pytest.fixture(scope="module")
def library_alpha(server, portrait, work) -> np.ndarray:
    """The alpha that segme's own Python path finds on the photo with the served model."""
    from segme import Segmenter

    model = work / "served.onnx"
    with urllib.request.urlopen(f"{server}/v1/model.onnx") as res:
        model.write_bytes(res.read())
    return Segmenter.from_file(model, threads=1)(portrait[1])


@pytest.fixture(scope="module")
def expected_alpha(library_alpha) -> float:
    """Mean alpha that segme's own Python path finds on the photo with the served model."""
    return float(library_alpha.mean())


@pytest.fixture(scope="module")
def browser(portrait):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        args = [*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={portrait[2]}"]
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=args)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A fresh page that records every request it makes and every script error."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.requests = []
    page.errors = []
    page.on("request", lambda r: page.requests.append((r.method, r.url)))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()


def open_page(page, url: str, backend: str) -> None:
    page.goto(url)
    page.wait_for_function("document.body.dataset.state !== 'loading'", timeout=WAIT_MS)
    state = page.evaluate("document.body.dataset.state")
    assert state == "ready", (state, page.inner_text("#message"))
    assert page.evaluate("document.body.dataset.backend") == backend, page.inner_text("#status")


def segment_photo(page, photo: Path) -> float:
    page.set_input_files("#photo", str(photo))
    page.wait_for_function("document.body.dataset.state === 'segmented'", timeout=WAIT_MS)
    return float(page.get_attribute("#result", "data-mean-alpha"))


def shot(page, shots: Path, name: str) -> None:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def test_photo_is_segmented_in_the_browser(page, server, portrait, backdrop, expected_alpha,
                                           shots):
    open_page(page, f"{server}/", "wasm")
    assert "in your browser (WASM)" in page.inner_text("#status")
    mean = segment_photo(page, portrait[0])
    shot(page, shots, "photo-wasm-replace")
    page.check("input[name=effect][value=blur]")
    shot(page, shots, "photo-wasm-blur")
    # a background photo: the same result redrawn over it, without segmenting again
    page.check("input[name=effect][value=replace]")
    frames = int(page.get_attribute("#result", "data-frames"))
    page.set_input_files("#bg-image", str(backdrop))
    page.wait_for_function(f"Number(document.querySelector('#result').dataset.frames) > {frames}",
                           timeout=WAIT_MS)
    shot(page, shots, "photo-wasm-background-photo")

    assert 0.05 < mean < 0.95, f"mean alpha {mean}: no real person/background split"
    assert abs(mean - expected_alpha) < 0.02, (mean, expected_alpha)
    # the model ran here: the server was never asked to segment, and nothing came from
    # anywhere but the server (onnxruntime's .wasm included, no CDN)
    assert not [u for m, u in page.requests if m == "POST"], page.requests
    assert all(u.startswith(server) or u.startswith(("data:", "blob:"))
               for _, u in page.requests), page.requests
    assert any(u.endswith(".wasm") for _, u in page.requests)
    assert not page.errors, page.errors


def test_photo_is_segmented_on_the_server_when_asked(page, server, portrait, expected_alpha,
                                                     shots):
    open_page(page, f"{server}/?backend=server", "server")
    assert "on the server" in page.inner_text("#status")
    mean = segment_photo(page, portrait[0])
    shot(page, shots, "photo-server-replace")

    assert 0.05 < mean < 0.95, f"mean alpha {mean}: no real person/background split"
    # the page sends the frame as a JPEG, so a little more slack than the lossless path
    assert abs(mean - expected_alpha) < 0.03, (mean, expected_alpha)
    assert ("POST", f"{server}/v1/mask?upsample=guided") in page.requests, page.requests
    assert not any(u.endswith((".onnx", ".wasm")) for _, u in page.requests), page.requests
    assert not page.errors, page.errors


def result_pixels(page) -> np.ndarray:
    """What the page shows: uint8 [H, W, 3] RGB of the result canvas."""
    url = page.evaluate("document.querySelector('#result').toDataURL('image/png')")
    png = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


# How close the page comes to the library: the IoU of the masks at 128, and the mean
# |page - library| of masks and pictures in grey levels (0..255). In the browser the page
# does the library's arithmetic (web/src/imgproc.js rounds as OpenCV does), so what is left
# is ONNX Runtime Web against ONNX Runtime, and a grey level here and there where OpenCV
# interpolates 8-bit images in fixed point. From the server the alpha is the library's own,
# of the frame as the page sent it: a JPEG (quality 0.9).
TOLERANCES = {"wasm": {"mask_iou": 0.995, "mask_mad": 0.5, "picture_mad": 0.5},
              "server": {"mask_iou": 0.98, "mask_mad": 2.0, "picture_mad": 1.5}}


@pytest.mark.parametrize("backend", ["wasm", "server"])
def test_the_page_draws_what_the_library_draws(page, server, portrait, backdrop, library_alpha,
                                               shots, backend):
    from segme import effects

    open_page(page, f"{server}/?backend={backend}", backend)
    segment_photo(page, portrait[0])
    got = {"replace": result_pixels(page)}  # the card's default colour
    for view in ("blur", "mask"):
        page.check(f"input[name=effect][value={view}]")
        got[view] = result_pixels(page)
    page.check("input[name=effect][value=replace]")
    frames = int(page.get_attribute("#result", "data-frames"))
    page.set_input_files("#bg-image", str(backdrop))
    page.wait_for_function(f"Number(document.querySelector('#result').dataset.frames) > {frames}",
                           timeout=WAIT_MS)
    got["photo"] = result_pixels(page)
    shot(page, shots, f"library-{backend}")
    image, alpha = portrait[1], library_alpha
    want = {"replace": effects.render("replace", image, alpha),
            "blur": effects.render("blur", image, alpha),
            "mask": effects.render("mask", image, alpha),
            "photo": effects.render("replace", image, alpha,
                                    background=np.asarray(Image.open(backdrop).convert("RGB")))}

    assert (got["mask"] == got["mask"][..., :1]).all()  # grey
    mask, truth = got["mask"][..., 0].astype(np.float32), want["mask"].astype(np.float32)
    iou = ((mask >= 128) & (truth >= 128)).sum() / ((mask >= 128) | (truth >= 128)).sum()
    mad = {"mask": float(np.abs(mask - truth).mean())}
    for name in ("replace", "blur", "photo"):
        assert got[name].shape == want[name].shape, name
        mad[name] = float(np.abs(got[name].astype(np.float32) - want[name]).mean())
    print(f"page vs library ({backend}): mask IoU {iou:.4f}, mean |difference| "
          + ", ".join(f"{k} {v:.3f}" for k, v in mad.items()))
    tol = TOLERANCES[backend]
    assert iou >= tol["mask_iou"] and mad["mask"] <= tol["mask_mad"], (iou, mad)
    assert max(mad[k] for k in ("replace", "blur", "photo")) <= tol["picture_mad"], mad
    assert not page.errors, page.errors


@pytest.mark.parametrize("breakage", ["no WebAssembly", "model download fails"])
def test_page_falls_back_to_the_server(page, server, portrait, shots, breakage):
    if breakage == "no WebAssembly":
        page.add_init_script("delete globalThis.WebAssembly")
    else:
        page.route("**/v1/model.onnx", lambda route: route.fulfill(status=500, body="broken"))
    open_page(page, f"{server}/", "server")
    status = page.inner_text("#status")
    assert "on the server" in status and "could not run" in status, status
    mean = segment_photo(page, portrait[0])
    shot(page, shots, f"fallback-{breakage.replace(' ', '-')}")

    assert 0.05 < mean < 0.95, f"mean alpha {mean}: no real person/background split"
    assert ("POST", f"{server}/v1/mask?upsample=guided") in page.requests, page.requests
    assert not page.errors, page.errors


@pytest.mark.parametrize("backend", ["wasm", "server"])
def test_webcam_runs_in_a_loop(page, server, shots, backend):
    open_page(page, f"{server}/?backend={backend}", backend)
    page.fill("#bg-color", "#3366ff")
    page.click("#camera")
    page.wait_for_function(
        "Number(document.querySelector('#fps').dataset.fps) > 0"
        " && Number(document.querySelector('#result').dataset.frames) >= 5",
        timeout=WAIT_MS,
    )
    fps = float(page.get_attribute("#fps", "data-fps"))
    mean = float(page.get_attribute("#result", "data-mean-alpha"))
    shot(page, shots, f"webcam-{backend}")
    page.click("#camera")  # stop
    print(f"webcam loop ({backend}): {fps} fps in headless Chromium")

    assert fps > 0
    assert 0.05 < mean < 0.95, f"mean alpha {mean}: no real person/background split"
    assert page.get_attribute("#camera", "aria-pressed") == "false"
    assert not page.errors, page.errors


def test_the_card_the_page_reads_is_served(server):
    """The fields the page relies on, from the real server."""
    with urllib.request.urlopen(f"{server}/v1/model") as res:
        card = json.load(res)
    assert len(card["input_size"]) == 2 and len(card["mean"]) == 3 and len(card["std"]) == 3
    assert card["color_order"] in ("rgb", "bgr")


@pytest.mark.parametrize("path, rendered", [("/docs", ".swagger-ui .opblock"),
                                            ("/redoc", "[data-section-id]")])
def test_api_reference_pages_render_from_this_server_alone(page, server, path, rendered):
    blocked = {}
    page.on("requestfailed", lambda r: blocked.update({r.url: r.failure}))
    page.goto(server + path)
    page.wait_for_selector(rendered, timeout=WAIT_MS)
    text = page.inner_text("body")
    assert "/v1/cutout" in text and "/v1/blur" in text, text[:500]
    # ReDoc asks for Redocly's logo on their CDN; the page's policy stops it in the browser
    went_out = {url: blocked.get(url) for _, url in page.requests
                if not url.startswith((server, "data:", "blob:"))}
    assert all(why == "csp" for why in went_out.values()), went_out  # Chromium: "csp"
    assert not page.errors, page.errors
