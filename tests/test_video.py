"""Videos through the real CLI: frame rate and audio kept, alpha video, odd files refused."""

import shutil
import subprocess
from fractions import Fraction

import numpy as np
import pytest

av = pytest.importorskip("av", reason="PyAV (the video extra) is not installed")

from segme.data.synthetic import synthetic_pair  # noqa: E402

SEGME = shutil.which("segme")


def make_video(path, frames=12, fps=15, size=(48, 64), audio=True, rotation=0):
    """A moving synthetic figure with a 440 Hz tone, like a phone clip; ``rotation``: the
    display matrix's counter-clockwise degrees (a phone held upright writes -90)."""
    out = av.open(str(path), "w")
    v = out.add_stream("libx264", rate=fps)
    v.width, v.height, v.pix_fmt = size[1], size[0], "yuv420p"
    if rotation:
        v.set_display_rotation(rotation)
    a = None
    if audio:
        a = out.add_stream("aac", rate=16000)
        a.layout = "mono"
    rng = np.random.default_rng(0)
    for _ in range(frames):
        img, _ = synthetic_pair(rng, *size)
        for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            out.mux(p)
    for p in v.encode():
        out.mux(p)
    if a is not None:
        t = np.arange(int(16000 * max(frames, fps) / fps)) / 16000  # at least one second
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
        frame.sample_rate = 16000
        for p in a.encode(frame):
            out.mux(p)
        for p in a.encode():
            out.mux(p)
    out.close()
    return path


def streams(path):
    with av.open(str(path)) as c:
        info = {s.type: s for s in c.streams}
        frames = sum(1 for _ in c.decode(video=0))
        rate = info["video"].average_rate
        pix = info["video"].codec_context.pix_fmt
    audio_packets = 0
    if "audio" in info:
        with av.open(str(path)) as c:
            audio_packets = sum(1 for p in c.demux(audio=0) if p.dts is not None)
    return frames, audio_packets, rate, pix


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import torch

    from segme.export.onnx import export_onnx
    from segme.models import create_model

    torch.manual_seed(0)
    m = create_model("test_tiny")
    return export_onnx(m, tmp_path_factory.mktemp("vm") / "tiny.onnx", m.card(32))


def run(*args):
    return subprocess.run([SEGME, *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("verb,extra,suffix", [
    ("blur", [], ".mp4"), ("replace", ["--bg", "navy"], ".mp4"), ("mask", [], ".mp4"),
    ("cutout", [], ".mov"),
])
def test_video_verbs_keep_rate_frames_and_audio(tmp_path, model, verb, extra, suffix):
    src = make_video(tmp_path / "clip.mp4")
    in_frames, in_audio, rate, _ = streams(src)
    proc = run(verb, src, "--out", tmp_path / "out", "--model", model, *extra)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out" / f"clip{suffix}"
    frames, audio, out_rate, pix = streams(out)
    assert frames == in_frames == 12 and out_rate == rate == Fraction(15)
    assert audio == in_audio > 0  # the audio track survives, packet for packet
    if verb == "cutout":
        assert pix.startswith("yuva")  # ProRes 4444 with alpha


def test_video_without_audio_and_odd_size(tmp_path, model):
    src = make_video(tmp_path / "silent.mp4", size=(50, 70), audio=False)
    proc = run("blur", src, "--out", tmp_path / "o", "--model", model)
    assert proc.returncode == 0, proc.stderr
    frames, audio, _, _ = streams(tmp_path / "o/silent.mp4")
    assert frames == 12 and audio == 0
    # guided upsampling is bilinear's opt-in alternative for videos, at any frame size
    proc = run("blur", src, "--upsample", "guided", "--out", tmp_path / "g", "--model", model)
    assert proc.returncode == 0, proc.stderr
    assert streams(tmp_path / "g/silent.mp4")[0] == 12
    proc = run("mask", src, "--tta", "flip", "--out", tmp_path / "t", "--model", model)
    assert proc.returncode == 2 and "--tta applies to images" in proc.stderr, proc.stderr
    assert not (tmp_path / "t").exists()  # refused before any output


def test_phone_video_with_a_display_matrix_is_turned_upright(tmp_path, model):
    from segme.io.video import VideoReader

    plain = make_video(tmp_path / "plain.mp4", frames=3, audio=False)
    phone = make_video(tmp_path / "phone.mp4", frames=3, audio=False, rotation=-90)
    with VideoReader(plain) as r:
        coded = list(r)
    with VideoReader(phone) as r:
        assert (r.rotation, r.width, r.height) == (270, 48, 64)  # shown 48 wide, 64 high
        upright = list(r)
    assert len(upright) == 3 and upright[0].shape == (64, 48, 3)
    # -90 counter-clockwise is a quarter turn clockwise: the coded frame's left column is
    # the top row of what a player shows (within the codec's loss)
    for a, b in zip(coded, upright):
        assert np.abs(np.rot90(a, -1).astype(int) - b.astype(int)).mean() < 2
        assert np.abs(np.rot90(a, 1).astype(int) - b.astype(int)).mean() > 10
    proc = run("mask", phone, "--out", tmp_path / "out", "--model", model)
    assert proc.returncode == 0, proc.stderr
    with av.open(str(tmp_path / "out/phone.mp4")) as c:
        frame = next(c.decode(video=0))
        # written upright, without a matrix to turn it again
        assert (frame.width, frame.height, frame.rotation) == (48, 64, 0)


def test_variable_frame_rate_keeps_every_frames_time(tmp_path, model):
    """A phone or screen recording slows down and speeds up: frames keep their times (so
    the copied audio stays in step), not an even 1 / average rate."""
    src = tmp_path / "vfr.mp4"
    out = av.open(str(src), "w")
    v = out.add_stream("libx264", rate=30)
    v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
    v.codec_context.time_base = Fraction(1, 90000)
    ticks = [3000 * i for i in range(12)] + [36000 + 9000 * i for i in range(6)]  # 30, then 10 fps
    rng = np.random.default_rng(0)
    for t in ticks:
        frame = av.VideoFrame.from_ndarray(synthetic_pair(rng, 48, 64)[0], format="rgb24")
        frame.pts, frame.time_base = t, Fraction(1, 90000)
        for p in v.encode(frame):
            out.mux(p)
    for p in v.encode():
        out.mux(p)
    out.close()

    def times(path):
        with av.open(str(path)) as c:
            t = [float(f.pts * f.time_base) for f in c.decode(video=0)]
        return [round(x - t[0], 3) for x in t]

    assert times(src) == [round(t / 90000, 3) for t in ticks]
    proc = run("blur", src, "--out", tmp_path / "o", "--model", model)
    assert proc.returncode == 0, proc.stderr
    assert times(tmp_path / "o/vfr.mp4") == times(src)


def test_bad_videos_give_one_line_and_no_output(tmp_path, model):
    audio_only = tmp_path / "voice.mp4"
    out = av.open(str(audio_only), "w")
    a = out.add_stream("aac", rate=16000)
    a.layout = "mono"
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="flt", layout="mono")
    frame.sample_rate = 16000
    for p in [*a.encode(frame), *a.encode()]:
        out.mux(p)
    out.close()
    empty = make_video(tmp_path / "empty.mkv", frames=0)  # a video stream with no frames
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 200)
    for src, words in [(audio_only, "no video stream"), (empty, "no frames"),
                       (zero, "not a video FFmpeg can decode"),
                       (corrupt, "not a video FFmpeg can decode")]:
        proc = run("blur", src, "--out", tmp_path / "out", "--model", model)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and words in proc.stderr, proc.stderr
        assert "[Errno" not in proc.stderr  # FFmpeg's reason, without its error number
        assert not (tmp_path / "out" / f"{src.stem}.mp4").exists()


def test_camera_loop_finalises_the_file_on_ctrl_c(tmp_path, model):
    import os
    import signal

    import cv2

    from segme.cli._apply import _write_rendered, apply_camera
    from segme.io.camera import Camera
    from segme.io.sinks import FileSink
    from segme.segmenter import Segmenter

    src = make_video(tmp_path / "cam.mp4", frames=30, audio=False)
    camera = Camera(cv2.VideoCapture(str(src)), pace=30)  # a file stands in for the device
    seen = []

    def render(frame, alpha, path):
        seen.append(alpha.shape)
        if len(seen) == 10:
            os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C mid-stream
        return frame

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN under nohup, Python's own otherwise
    sink = FileSink(lambda frames: _write_rendered(frames, tmp_path / "live", Fraction(30)))
    apply_camera(camera, Segmenter(model).streamer("ema"), render, [sink])
    target, n = sink.result
    frames, _, _, _ = streams(target)
    # the frames already in the pipeline when Ctrl-C came are finished and written too
    assert target.suffix == ".mp4" and frames == n == len(seen) and 10 <= frames <= 14
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler restored


@pytest.mark.parametrize("view", ["blur", "replace", "mask"])
def test_camera_run_feeds_its_sinks_every_frame_in_order(tmp_path, model, view):
    """A file paced at 30 fps as the camera, the model with ema, each view: the fake sink
    gets one rendered frame per camera frame not dropped, at the camera's size, in the
    camera's order (the newest frame always among them)."""
    import cv2

    from segme.cli._apply import apply_camera
    from segme.cli._live import Look
    from segme.io.camera import Camera
    from segme.segmenter import Segmenter

    src = make_video(tmp_path / "cam.mp4", frames=30, audio=False)
    cap = cv2.VideoCapture(str(src))
    decoded = []
    while (got := cap.read())[0]:
        decoded.append(cv2.cvtColor(got[1], cv2.COLOR_BGR2RGB))  # as Camera reads them
    assert len(decoded) == 30
    sources, rendered = [], []
    look = Look(view)
    look.more_backgrounds()

    def render(frame, alpha, path):
        sources.append(next(i for i, d in enumerate(decoded) if np.array_equal(frame, d)))
        rendered.append(look.render(frame, alpha, path))
        return rendered[-1]

    class Recorder:  # the fake sink
        live, frames, closed = True, [], False

        def write(self, frame):
            self.frames.append(frame)

        def close(self):
            self.closed = True

    sink = Recorder()
    camera = Camera(cv2.VideoCapture(str(src)), pace=30)
    n, dropped = apply_camera(camera, Segmenter(model).streamer("ema"), render, [sink], look)
    assert sink.closed and len(sink.frames) == n == len(sources) and n + dropped == 30
    assert sources == sorted(set(sources)) and sources[-1] == 29
    assert [id(f) for f in sink.frames] == [id(f) for f in rendered]
    shape = (48, 64) if view == "mask" else (48, 64, 3)
    assert all(f.shape == shape and f.dtype == np.uint8 for f in sink.frames)


def test_missing_camera_is_one_line(tmp_path, model):
    proc = run("blur", "7", "--out", tmp_path, "--model", model)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "error: cannot open camera 7: no such device, or it is busy")


def test_video_background_loops_under_a_longer_clip(tmp_path, model):
    src = make_video(tmp_path / "talk.mp4", frames=12)
    bg = make_video(tmp_path / "waves.mp4", frames=5, size=(30, 90), audio=False)
    proc = run("replace", src, "--bg", bg, "--out", tmp_path / "o", "--model", model)
    assert proc.returncode == 0, proc.stderr
    frames, audio, _, _ = streams(tmp_path / "o/talk.mp4")
    assert frames == 12 and audio > 0  # 5 background frames played 2.4 times
    # photos take the background's frames in turn too
    from PIL import Image

    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "p.png")
    proc = run("replace", tmp_path / "p.png", "--bg", bg, "--out", tmp_path / "o2", "--model",
               model)
    assert proc.returncode == 0 and (tmp_path / "o2/p.png").exists()


def test_looping_frames_start_over(tmp_path):
    from segme.io.video import LoopingFrames

    bg = make_video(tmp_path / "bg.mp4", frames=3, audio=False)
    frames = LoopingFrames(bg)
    got = [next(frames) for _ in range(7)]
    assert np.array_equal(got[0], got[3]) and np.array_equal(got[1], got[4])
    assert not np.array_equal(got[0], got[1])
    frames.close()


def test_output_name_keeps_dots_in_the_stem(tmp_path, model):
    src = make_video(tmp_path / "take.2.final.mp4", frames=4, audio=False)
    proc = run("blur", src, "--out", tmp_path / "o", "--model", model)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["take.2.final.mp4"]
