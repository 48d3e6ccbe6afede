"""The live camera path without a model or a device: sinks (a recording fake, the file, the
virtual camera through pyvirtualcam), live controls, terminal keys, the baseline as a
stream, and the options' one-line errors."""

import glob
import os
import sys

import cv2
import numpy as np
import pytest

from segme.bgsub import BackgroundSubtraction
from segme.cli._apply import apply_camera
from segme.cli._live import MORE_BACKGROUNDS, Background, Look
from segme.io.camera import Camera
from segme.io.sinks import FileSink, NoVirtualCamera, VirtualCamera
from tests.console import assert_clean_error, needs_cli, run

H, W, N = 48, 64, 30


class RecordingSink:
    """A sink that keeps what it was given; ``hooks`` maps a write count to a call."""

    def __init__(self, live=True, hooks=None):
        self.live, self.hooks, self.frames, self.closed = live, hooks or {}, [], False

    def write(self, frame):
        self.frames.append(frame)
        if len(self.frames) in self.hooks:
            self.hooks[len(self.frames)]()

    def close(self):
        self.closed = True


class Passthrough:
    """A stream without a model: every frame is all person."""

    def push(self, frame):
        return [(frame, np.ones(frame.shape[:2], np.float32))]

    def flush(self):
        return []


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """N distinct frames in a file (Motion JPEG: OpenCV writes it without extras), and the
    RGB frames OpenCV decodes from it."""
    path = tmp_path_factory.mktemp("cam") / "clip.avi"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (W, H))
    rng = np.random.default_rng(0)
    for _ in range(N):
        out.write(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    out.release()
    cap = cv2.VideoCapture(str(path))
    decoded = []
    while (got := cap.read())[0]:
        decoded.append(cv2.cvtColor(got[1], cv2.COLOR_BGR2RGB))
    assert len(decoded) == N
    return path, decoded


def index_of(frame, decoded):
    return next(i for i, d in enumerate(decoded) if np.array_equal(frame, d))


def test_every_sink_gets_every_frame_in_order(clip):
    path, decoded = clip
    camera = Camera(cv2.VideoCapture(str(path)), pace=30)
    assert camera.size == (W, H) and camera.fps == 30
    sinks = [RecordingSink(), RecordingSink(live=False)]
    n, dropped = apply_camera(camera, Passthrough(), lambda f, a, p: f, sinks)
    assert all(s.closed for s in sinks)
    for s in sinks:
        order = [index_of(f, decoded) for f in s.frames]
        assert len(order) == n and n + dropped == N
        assert order == sorted(set(order)) and order[-1] == N - 1  # the newest always comes


def test_pause_freezes_the_live_sinks_and_gaps_the_recording(clip):
    path, decoded = clip
    look = Look("blur")
    live = RecordingSink(hooks={5: lambda: look.press(" "), 10: lambda: look.press(" ")})
    recording = RecordingSink(live=False)
    apply_camera(Camera(cv2.VideoCapture(str(path)), pace=30), Passthrough(),
                 lambda f, a, p: f, [live, recording], look)
    assert all(f is live.frames[4] for f in live.frames[5:10])  # frozen while paused
    assert live.frames[10] is not live.frames[4]  # and going again
    # the recording skips the paused stretch instead of holding a still
    assert [id(f) for f in recording.frames] == [id(f) for f in live.frames[:5] +
                                                 live.frames[10:]]


def test_q_stops_the_camera(clip):
    path, _ = clip
    look = Look("blur")
    sink = RecordingSink(hooks={3: lambda: look.press("q")})
    n, _ = apply_camera(Camera(cv2.VideoCapture(str(path)), pace=30), Passthrough(),
                        lambda f, a, p: f, [sink], look)
    assert 3 <= n <= 5 and sink.closed  # the frames already in flight come out too


def test_a_failing_sink_stops_the_run_and_the_others_are_closed(clip):
    path, _ = clip

    class Broken(RecordingSink):
        def write(self, frame):
            raise OSError("device went away")

    ok = RecordingSink()
    with pytest.raises(OSError, match="device went away"):
        apply_camera(Camera(cv2.VideoCapture(str(path)), pace=30), Passthrough(),
                     lambda f, a, p: f, [ok, Broken()])
    assert ok.closed


def test_file_sink_runs_its_writer_in_a_thread_and_reports_its_error():
    got = []
    sink = FileSink(lambda frames: got.extend(frames) or len(got))
    for i in range(5):
        sink.write(np.full((2, 2, 3), i, np.uint8))
    sink.close()
    assert sink.result == 5 and [int(f[0, 0, 0]) for f in got] == [0, 1, 2, 3, 4]

    def fails(frames):
        next(frames)
        raise ValueError("disk full")

    sink = FileSink(fails)
    sink.write(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="disk full"):
        for _ in range(10):  # a later write, or close, says so
            sink.write(np.zeros((2, 2, 3), np.uint8))
        sink.close()


def test_keys_change_the_view_background_strength_and_pause():
    look = Look("blur", strength=15)
    image = np.full((H, W, 3), 90, np.uint8)
    alpha = np.zeros((H, W), np.float32)
    assert look.press("r") is None or look.view == "blur"  # no background yet: no replace
    look.more_backgrounds()
    assert [b.name for b in look.backgrounds] == list(MORE_BACKGROUNDS)
    assert look.press("r") == f"replace: {MORE_BACKGROUNDS[0]}"
    assert tuple(look.render(image, alpha)[0, 0]) == (0, 177, 64)  # the green screen
    assert look.press("n") == "replace: white"
    assert tuple(look.render(image, alpha)[0, 0]) == (255, 255, 255)
    assert look.press("m") == "mask" and look.render(image, alpha).shape == (H, W)
    assert look.press("+") == "blur 20" and look.press("-") == "blur 15"
    for _ in range(5):
        look.press("-")
    assert look.strength == 0 and np.array_equal(look.render(image, alpha), image)
    assert look.press(" ") == "blur 0 (paused)" and look.paused
    assert look.press(" ") == "blur 0" and not look.paused
    assert look.press("x") is None and look.press("h").startswith("keys:")
    assert look.press("q") == "stopping" and look.stopped


def test_a_cutout_keeps_its_view_and_takes_pause_and_stop():
    """A cut-out's transparency is what its file holds: the view keys leave it alone."""
    look = Look("cutout", edge=0.2)
    look.more_backgrounds()
    image = np.full((H, W, 3), 90, np.uint8)
    alpha = np.full((H, W), 0.5, np.float32)
    for key in "brmn+-":
        assert look.press(key) is None and look.view == "cutout"
    assert look.render(image, alpha).shape == (H, W, 4)
    assert (look.render(image, alpha)[..., 3] == 128).all()  # smooth-step keeps 0.5
    assert look.press(" ") == "cutout (paused)" and look.press("q") == "stopping"


def test_replace_keeps_its_own_backgrounds_first(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((10, 20, 3), (10, 20, 30), np.uint8)).save(tmp_path / "beach.png")
    look = Look("replace", backgrounds=[Background(str(tmp_path / "beach.png")),
                                        Background("navy")])
    look.more_backgrounds()
    names = [look.status()]
    for _ in range(len(look.backgrounds)):
        look.press("n")
        names.append(look.status())
    assert names == ["replace: beach.png", "replace: navy",
                     *(f"replace: {c}" for c in MORE_BACKGROUNDS), "replace: beach.png"]
    with pytest.raises(FileNotFoundError, match="background file not found"):
        Background("nowhere/beach.jpg")


@pytest.mark.skipif(os.name != "posix", reason="a pseudo-terminal needs POSIX")
def test_terminal_keys_arrive_one_by_one_and_the_terminal_is_restored(monkeypatch):
    import pty
    import termios
    import time

    from segme.cli._live import TerminalKeys

    master, slave = pty.openpty()
    stdin = os.fdopen(slave, "r")
    monkeypatch.setattr(sys, "stdin", stdin)
    before = termios.tcgetattr(slave)
    got = []
    with TerminalKeys(got.append) as keys:
        assert keys.active
        assert not termios.tcgetattr(slave)[3] & termios.ICANON  # no Enter needed
        os.write(master, b"rn ")
        deadline = time.monotonic() + 5
        while len(got) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert got == ["r", "n", " "]
    assert termios.tcgetattr(slave) == before
    stdin.close()
    os.close(master)


class _RecordingBackend:
    """A pyvirtualcam backend that keeps the frames instead of sending them to a device."""

    sent: list = []

    def __init__(self, width, height, fps, fourcc, device, **kw):
        self.size, self.fps = (width, height), fps
        _RecordingBackend.sent = []

    def send(self, frame):
        _RecordingBackend.sent.append(frame.copy())

    def close(self):
        pass

    def device(self):
        return "recorder"

    def native_fourcc(self):
        return None


@pytest.fixture
def recording_backend():
    """``_RecordingBackend`` registered with pyvirtualcam for one test (registered, it
    would also answer the device tests' search for a real device)."""
    pytest.importorskip("pyvirtualcam", reason="the camera extra is not installed")
    from pyvirtualcam import camera

    camera.register_backend("segme-test", _RecordingBackend)
    yield "segme-test"
    del camera.BACKENDS["segme-test"]


def test_virtual_camera_sink_sends_rgb_at_its_size_through_pyvirtualcam(recording_backend):
    sink = VirtualCamera(W, H, 30, backend=recording_backend)
    assert sink.live and sink.device == "recorder"
    sink.write(np.full((H, W, 3), (1, 2, 3), np.uint8))
    sink.write(np.full((H, W), 200, np.uint8))  # the mask view: grey
    sink.write(np.full((2 * H, 2 * W, 3), 7, np.uint8))  # another size: resized
    sink.close()
    sent = [f.reshape(H, W, 3) for f in _RecordingBackend.sent]  # pyvirtualcam flattens
    assert len(sent) == sink.frames == 3
    assert tuple(sent[0][0, 0]) == (1, 2, 3) and tuple(sent[1][0, 0]) == (200, 200, 200)
    assert tuple(sent[2][0, 0]) == (7, 7, 7)


def _loopback_or_skip() -> VirtualCamera:
    pytest.importorskip("pyvirtualcam", reason="the camera extra is not installed")
    if sys.platform != "linux":
        pytest.skip("the loopback device test is for Linux (v4l2loopback)")
    try:
        return VirtualCamera(320, 240, 30)
    except NoVirtualCamera as e:
        devices = ", ".join(glob.glob("/dev/video*")) or "no /dev/video*"
        pytest.skip(f"no v4l2loopback device ({devices}): {e}")


def test_virtual_camera_without_pyvirtualcam_gives_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'segme\[camera\]'"):
        VirtualCamera(320, 240, 30)


def test_virtual_camera_without_a_device_says_what_to_install():
    pytest.importorskip("pyvirtualcam", reason="the camera extra is not installed")
    try:
        VirtualCamera(320, 240, 30).close()
    except NoVirtualCamera as e:
        message = str(e)
        assert "\n" not in message and message.startswith("no virtual camera device")
        assert ("v4l2loopback" if sys.platform == "linux" else "OBS") in message
    else:
        pytest.skip("a virtual camera device exists here")


def test_virtual_camera_sink_on_a_real_v4l2loopback_device():
    """What an app reading the device sees: the colour sent (through I420, so nearly)."""
    import threading
    import time

    sink = _loopback_or_skip()
    colour = (200, 40, 90)
    stop = threading.Event()

    def feed():
        while not stop.is_set():
            sink.write(np.full((240, 320, 3), colour, np.uint8))
            time.sleep(1 / 30)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        time.sleep(0.3)
        cap = cv2.VideoCapture(sink.device, cv2.CAP_V4L2)
        assert cap.isOpened(), f"cannot read back {sink.device}"
        ok, frame = cap.read()
        cap.release()
    finally:
        stop.set()
        writer.join()
        sink.close()
    assert ok and frame.shape == (240, 320, 3)
    rgb = frame[:, :, ::-1].reshape(-1, 3).mean(0)
    assert np.abs(rgb - colour).max() < 12, rgb


def test_baseline_stream_learns_the_empty_scene_then_finds_the_person():
    from segme.data.synthetic import synthetic_pair

    rng = np.random.default_rng(3)
    scene = rng.integers(0, 60, (H, W, 3), dtype=np.uint8)  # a textured, static, dark room
    person_image, mask = synthetic_pair(np.random.default_rng(1), H, W)
    person = mask >= 0.5
    frame = np.where(person[:, :, None], person_image, scene)
    stream = BackgroundSubtraction(learn=4)
    for _ in range(4):
        (_, alpha), = stream.push(scene)
        assert alpha.min() == 1.0  # learning: the picture shows the camera as it is
    assert not stream.learning
    (out, alpha), = stream.push(frame)
    assert out is frame and alpha.dtype == np.float32 and alpha.shape == (H, W)
    found = alpha >= 0.5
    assert (found & person).sum() / (found | person).sum() > 0.8
    assert stream.flush() == [] and stream.reset() == [] and stream.learning


@needs_cli
@pytest.mark.parametrize("args,words", [
    (["blur", "a.png", "--virtual-camera"], ["--virtual-camera takes a camera source"]),
    (["mask", "a.png", "--model", "bgsub"], ["--model bgsub", "eval-video --temporal bgsub"]),
    (["blur", "0", "--model", "bgsub", "--temporal", "ema"], ["--temporal", "bgsub"]),
    (["replace", "a.png", "--bg", "red", "--bg", "blue"], ["several --bg are for a camera"]),
])
def test_camera_options_elsewhere_give_one_line(tmp_path, args, words):
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    args = [str(tmp_path / a) if a == "a.png" else a for a in args]
    assert_clean_error(run(*args, "-o", tmp_path / "out", ok=False), *words)
    assert not (tmp_path / "out").exists()
