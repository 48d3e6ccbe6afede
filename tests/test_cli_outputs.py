"""The photo verbs' sources and outputs, as people type them: one file out, a folder out,
pipes, several sources, addresses, name clashes, re-runs and subfolders. Each case runs the
real ``segme`` console script with the built-in default model."""

import functools
import http.server
import io
import subprocess
import threading

import numpy as np
import pytest
from PIL import Image

from tests.console import SEGME, assert_clean_error, needs_cli, run

pytestmark = needs_cli


@pytest.fixture()
def shots(tmp_path):
    """shots/{a.jpg, b.png, sub/c.jpg}: small RGB photos."""
    rng = np.random.default_rng(1)
    root = tmp_path / "shots"
    (root / "sub").mkdir(parents=True)
    for name, size in (("a.jpg", (40, 48)), ("b.png", (36, 30)), ("sub/c.jpg", (20, 24))):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(
            root / name)
    return root


def names(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_one_input_and_a_file_name_writes_that_file(shots, tmp_path):
    out = tmp_path / "o"
    run("cutout", shots / "a.jpg", "-o", out / "result.png")  # its folder is created
    assert Image.open(out / "result.png").mode == "RGBA"
    run("mask", shots / "a.jpg", "-o", out / "m.jpg")
    assert Image.open(out / "m.jpg").format == "JPEG"
    run("blur", shots / "b.png", "-o", out / "blurred.webp")
    img = Image.open(out / "blurred.webp")
    assert img.format == "WEBP" and img.size == (36, 30)
    assert names(out) == ["blurred.webp", "m.jpg", "result.png"]


def test_a_file_name_whose_format_does_not_fit_is_refused_before_any_work(shots, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert_clean_error(run("cutout", shots / "a.jpg", "-o", out / "cut.jpg", ok=False),
                       "transparency", ".png")
    assert_clean_error(run("mask", shots / "a.jpg", "-o", out / "m.gif", ok=False), "m.gif")
    assert_clean_error(run("mask", shots / "a.jpg", shots / "b.png", "-o", out / "m.png",
                           ok=False), "2 inputs", "folder")
    assert list(out.iterdir()) == []


def test_folders_out_existing_new_with_a_slash_or_without_an_extension(shots, tmp_path):
    existing = tmp_path / "existing"
    existing.mkdir()
    run("mask", shots / "a.jpg", "-o", existing)
    run("mask", shots / "a.jpg", "-o", f"{tmp_path / 'new.d'}/")
    run("mask", shots / "a.jpg", "-o", tmp_path / "plain")
    for folder in ("existing", "new.d", "plain"):
        assert names(tmp_path / folder) == ["a.png"]


def test_standard_input_to_standard_output(shots):
    data = (shots / "a.jpg").read_bytes()
    proc = subprocess.run([SEGME, "cutout", "-", "-o", "-"], input=data, capture_output=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    img = Image.open(io.BytesIO(proc.stdout))
    assert img.format == "PNG" and img.mode == "RGBA" and img.size == (40, 48)
    proc = subprocess.run([SEGME, "mask", "-", "-o", "-"], input=b"not an image",
                          capture_output=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == b""
    assert proc.stderr.decode().startswith("error: cannot read standard input")
    assert_clean_error(run("mask", "-", "-", ok=False), "once")


def test_standard_input_to_a_file(shots, tmp_path):
    proc = subprocess.run([SEGME, "blur", "-", "-o", str(tmp_path / "b.jpg")],
                          input=(shots / "b.png").read_bytes(), capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(tmp_path / "b.jpg").size == (36, 30)


def test_several_sources_as_a_shell_glob_gives_them(shots, tmp_path):
    run("mask", shots / "a.jpg", shots / "b.png", shots / "sub/c.jpg", "-o", tmp_path / "m")
    assert names(tmp_path / "m") == ["a.png", "b.png", "c.png"]
    assert_clean_error(run("mask", shots / "a.jpg", tmp_path / "nothing.jpg", "-o",
                           tmp_path / "x", ok=False), "not found", "nothing.jpg")
    assert not (tmp_path / "x").exists()


def test_subfolders_with_recursive_mirrored_and_noted_without(shots, tmp_path):
    proc = run("mask", shots, "-o", tmp_path / "flat")
    assert names(tmp_path / "flat") == ["a.png", "b.png"]
    assert "--recursive" in proc.stderr
    run("mask", shots, "--recursive", "-o", tmp_path / "deep")
    assert names(tmp_path / "deep") == ["a.png", "b.png", "sub/c.png"]
    # an output folder inside the source is never read back as input
    run("mask", shots, "-r", "-o", shots / "masks")
    run("mask", shots, "-r", "-o", shots / "masks")
    assert names(shots / "masks") == ["a.png", "b.png", "sub/c.png"]


def test_a_name_clash_keeps_both_and_says_so(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rgb = np.full((20, 20, 3), 128, np.uint8)
    Image.fromarray(rgb).save(src / "a.jpg")
    Image.fromarray(rgb).save(src / "a.png")
    Image.fromarray(rgb).save(src / "z.jpg")
    proc = run("mask", src, "-o", tmp_path / "out")
    assert names(tmp_path / "out") == ["a.jpg.png", "a.png.png", "z.png"]
    assert "a.jpg.png" in proc.stderr and "wrote 3 of 3" in proc.stdout


def test_re_running_into_the_input_folder_works(shots):
    run("mask", shots / "sub", "-o", shots / "sub")
    run("mask", shots / "sub", "-o", shots / "sub")  # c.png, an output now, is not an input
    proc = run("mask", shots / "sub", "-o", shots / "sub")
    assert "earlier outputs" in proc.stderr and "wrote 1 of 1" in proc.stdout
    assert names(shots / "sub") == ["c.jpg", "c.png"]
    # b.png is an input whose mask would overwrite it: refused, the photo intact
    proc = run("mask", shots, "-o", shots, ok=False)
    assert proc.returncode == 1 and "overwrite an input" in proc.stderr
    assert Image.open(shots / "b.png").mode == "RGB"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def web(shots):
    """A real HTTP server on localhost serving the shots folder."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(shots)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_sources_are_fetched(web, tmp_path):
    run("cutout", f"{web}/a.jpg", f"{web}/sub/c.jpg", "-o", tmp_path / "cut")
    assert names(tmp_path / "cut") == ["a.png", "c.png"]
    assert Image.open(tmp_path / "cut/a.png").size == (40, 48)
    run("blur", f"{web}/b.png", "-o", tmp_path / "one.png")
    assert Image.open(tmp_path / "one.png").size == (36, 30)
    proc = run("mask", f"{web}/missing.jpg", f"{web}/a.jpg", "-o", tmp_path / "m", ok=False)
    assert proc.returncode == 1 and "HTTP 404" in proc.stderr and "Traceback" not in proc.stderr
    assert names(tmp_path / "m") == ["a.png"]


def test_an_unreachable_address_is_one_line(tmp_path):
    import socket

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run("mask", f"http://127.0.0.1:{port}/x.jpg", "-o", tmp_path / "m", ok=False)
    assert proc.returncode == 1 and "cannot fetch" in proc.stderr
    assert "Traceback" not in proc.stderr and not list((tmp_path / "m").glob("*"))


def test_bad_background_file_and_job_count(shots, tmp_path):
    assert_clean_error(run("replace", shots / "a.jpg", "--bg", tmp_path / "nosuch.jpg", "-o",
                           tmp_path / "r", ok=False), "not found", "nosuch.jpg")
    proc = run("mask", shots / "a.jpg", "--jobs", 0, "-o", tmp_path / "j", ok=False)
    assert proc.returncode == 2 and "--jobs" in proc.stderr
    assert not (tmp_path / "j").exists()


def test_one_video_and_a_file_name_writes_that_file(tmp_path):
    av = pytest.importorskip("av", reason="PyAV (the video extra) is not installed")
    from tests.test_video import make_video

    clip = make_video(tmp_path / "talk.mp4", frames=6, audio=False)
    run("blur", clip, "-o", tmp_path / "result.mp4")
    with av.open(str(tmp_path / "result.mp4")) as c:
        assert c.streams.video[0].frames == 6
    assert_clean_error(run("cutout", clip, "-o", tmp_path / "cut.mp4", ok=False), ".mov")
    assert not (tmp_path / "cut.mp4").exists()
    assert_clean_error(run("mask", clip, "-o", "-", ok=False), "photos")
