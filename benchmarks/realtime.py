"""Real-time video: end-to-end frames per second, and the webcam path's glass-to-glass latency.

1. ``segme replace`` (green screen) and ``segme blur`` on a 1280x720 clip with its audio
   track, run as the real command (start-up included), for each ``--temporal`` method;
   beside them, in the same run, the same work done one frame after another in one thread
   (decode, segment, composite, encode: the pipeline before it was overlapped) as the
   reference that the speed-up is measured against.
2. The live path (``segme blur 0``, ``segme replace 0 --bg '#00b140'``), through the CLI's
   own ``apply_camera`` and sinks: a camera stood in for by the clip paced at 30 fps
   (``Camera(..., pace=30)``), read in its own thread keeping only the newest frame, then
   the same overlapped stages, into the sinks of a camera run: the window alone; the
   window and the virtual camera (``--virtual-camera``); the window and the file (a
   camera run without it). Latency = the time from a frame's release by the paced source
   to the moment the last sink has taken its composited frame (the window drawn, the
   virtual camera's ``send`` returned, the encoder's queue); also the frames per second
   reaching the sinks and the camera frames dropped.

   Where OpenCV cannot open a window (no display, the headless build) the window sink
   draws its frame (colour conversion, frame rate and status text) without showing it.
   Where no virtual camera device exists, pyvirtualcam runs with a stand-in backend
   (``NullDevice``): pyvirtualcam's own Python path, then the RGB -> I420 conversion that
   its v4l2loopback backend does natively (OpenCV's here), written to /dev/null instead
   of the device. The table says which ran.

    python benchmarks/realtime.py --video-from ../shared/data/video/talking_katiehill_000.mp4
    python benchmarks/realtime.py --video-from ... --live-only   # part 2 only

``--video-from`` is scaled to 720 px high and centred on a blurred copy of itself
(1280x720, audio kept); pass ``--video`` to use a 1280x720 file as it is.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from deploy import make_720p

from segme import effects
from segme.cli._apply import _write_rendered, apply_camera
from segme.cli._live import Background, Look
from segme.io.camera import Camera
from segme.io.sinks import FileSink, NoVirtualCamera, VirtualCamera, Window
from segme.io.video import VideoReader, write_video
from segme.segmenter import Segmenter
from segme.temporal import DEFAULT_VIDEO_METHOD

GREEN = (0, 177, 64)
RENDER = {
    "replace": lambda frame, alpha, _: effects.replace_background(frame, alpha, GREEN),
    "blur": lambda frame, alpha, _: effects.blur_background(frame, alpha),
}
VERB_ARGS = {"replace": ["--bg", "#00b140"], "blur": []}


def sequential(video: Path, out: Path, seg: Segmenter, verb: str) -> float:
    """The reference: every stage of every frame in turn, one thread. Returns seconds."""
    t0 = time.perf_counter()
    with VideoReader(video) as reader:
        frames = (RENDER[verb](f, seg(f), video) for f in reader)
        write_video(frames, out, reader.fps, audio_from=video if reader.has_audio else None)
    return time.perf_counter() - t0


def command(video: Path, out: Path, model: Path | None, verb: str, temporal: str,
            upsample: str) -> float:
    """``segme <verb>`` as a user runs it, start-up included. Returns seconds."""
    cmd = [sys.executable, "-m", "segme.cli.main", verb, str(video), *VERB_ARGS[verb],
           "--out", str(out), "--temporal", temporal, "--upsample", upsample]
    if model:
        cmd += ["--model", str(model)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return time.perf_counter() - t0


class NullDevice:
    """A pyvirtualcam backend standing in for a v4l2loopback device where none exists: the
    RGB -> I420 conversion the native backend does, then a write to /dev/null."""

    def __init__(self, width, height, fps, fourcc, device, **kw) -> None:
        self.shape = (height, width, 3)
        self.fd = os.open(os.devnull, os.O_WRONLY)

    def send(self, frame: np.ndarray) -> None:
        os.write(self.fd, cv2.cvtColor(frame.reshape(self.shape), cv2.COLOR_RGB2YUV_I420))

    def close(self) -> None:
        os.close(self.fd)

    def device(self) -> str:
        return "/dev/null (stand-in)"

    def native_fourcc(self):
        return None


class OffscreenWindow(Window):
    """The window's per-frame drawing where it cannot be shown (no display)."""

    def write(self, frame: np.ndarray) -> None:
        self.draw(frame)

    def close(self) -> None:
        pass


class Clock:
    """The last sink: when each composited frame got here, against its camera release."""

    live = True

    def __init__(self, born: dict[int, float]) -> None:
        self.born, self.latency, self.times = born, [], []

    def write(self, frame: np.ndarray) -> None:
        now = time.perf_counter()
        self.latency.append((now - self.born.pop(id(frame))) * 1000.0)
        self.times.append(now)

    def close(self) -> None:
        pass


def open_virtual_camera(size: tuple[int, int], fps: float) -> VirtualCamera:
    """A real virtual camera where a device exists, else pyvirtualcam on ``NullDevice``."""
    try:
        return VirtualCamera(*size, fps)
    except NoVirtualCamera:
        import pyvirtualcam

        pyvirtualcam.register_backend("segme-null", NullDevice)
        return VirtualCamera(*size, fps, backend="segme-null")


def live(video: Path, seg: Segmenter, temporal: str, fps: float, verb: str, outputs: str,
         tmp: Path) -> dict:
    """``segme <verb> 0`` into ``outputs`` (window, +virtual camera, +file) on a paced file:
    latency per frame, frames per second at the sinks, drops, and which devices ran."""
    camera = Camera(cv2.VideoCapture(str(video)), pace=fps)
    released: dict[int, float] = {}
    born: dict[int, float] = {}
    def timed():
        for f in camera:
            released[id(f)] = time.perf_counter()  # alive frames keep distinct ids
            yield f

    look = Look(verb, backgrounds=[Background("#00b140")])

    def render(frame, alpha, path):
        out = look.render(frame, alpha, path)
        born[id(out)] = released.pop(id(frame))
        return out

    window = Window.open("segme benchmark", look.press, look.status)
    kinds = ["window" if window else "window (drawn offscreen)"]
    sinks: list = [window or OffscreenWindow("segme benchmark", look.press, look.status)]
    if "vcam" in outputs:
        vcam = open_virtual_camera(camera.size, camera.fps)
        kinds.append(f"virtual camera {vcam.device}")
        sinks.append(vcam)
    if "file" in outputs:
        kinds.append("file")
        sinks.append(FileSink(lambda frames: _write_rendered(
            frames, tmp / f"live-{verb}-{outputs}", Fraction(fps).limit_denominator(1001))))
    clock = Clock(born)
    n, dropped = apply_camera(_Iterable(camera, timed), seg.streamer(temporal), render,
                              [*sinks, clock], look)
    span = clock.times[-1] - clock.times[0] if n > 1 else float("nan")
    return {"sinks": " + ".join(kinds), "frames": n, "dropped": dropped,
            "fps": (n - 1) / span, "median_ms": statistics.median(clock.latency),
            "p95_ms": statistics.quantiles(clock.latency, n=20)[-1]}


class _Iterable:
    """``camera`` with its frames timed on release, as ``apply_camera`` reads a camera."""

    def __init__(self, camera: Camera, frames) -> None:
        self.frames, self.stop, self.sigint_stops = frames, camera.stop, camera.sigint_stops

    def __iter__(self):
        return self.frames()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--video-from", type=Path, help="clip to turn into a 1280x720 one")
    src.add_argument("--video", type=Path, help="a 1280x720 clip to use as it is")
    ap.add_argument("--model", type=Path, help="model file; default: the built-in model")
    ap.add_argument("--temporal", default=f"none,{DEFAULT_VIDEO_METHOD}",
                    help="comma-separated methods to run the commands with")
    ap.add_argument("--threads", type=int, default=1,
                    help="model threads (the CLI's video default is 1: the other stages "
                         "need the second core)")
    ap.add_argument("--pace", type=float, default=30.0, help="camera frame rate to simulate")
    ap.add_argument("--upsample", default="guided",
                    help="comma-separated upsampling modes (guided: the commands' default)")
    ap.add_argument("--live-only", action="store_true", help="only the live path (part 2)")
    ap.add_argument("--outputs", default="window,window+vcam,window+file",
                    help="comma-separated sink sets of the live path")
    args = ap.parse_args()
    modes = args.upsample.split(",")

    tmp = Path(tempfile.mkdtemp(prefix="segme-realtime-"))
    video = args.video or make_720p(args.video_from, tmp / "clip720.mp4")
    with VideoReader(video) as r:
        n, size, src_fps, audio = r.frames, (r.width, r.height), float(r.fps), r.has_audio
    segs = {m: Segmenter(args.model, threads=args.threads, upsample=m) for m in modes}
    seg = segs[modes[0]]
    print(f"{video.name}: {size[0]}x{size[1]}, {n} frames at {src_fps:.3g} fps"
          f"{', with audio' if audio else ''}; model {seg.card.arch} "
          f"{seg.card.input_size[1]}x{seg.card.input_size[0]}, {args.threads} thread(s)\n")

    print("| job | pipeline | upsampling | temporal | seconds | fps end to end "
          "| speed-up vs one thread |")
    print("|---|---|---|---|---|---|---|")
    for verb in () if args.live_only else ("replace", "blur"):
        # the reference: one thread, bilinear when it is measured (the older pipeline)
        ref_mode = "bilinear" if "bilinear" in segs else modes[0]
        ref = sequential(video, tmp / f"seq-{verb}.mp4", segs[ref_mode], verb)
        print(f"| segme {verb} | one thread, stage after stage (reference, in process) | "
              f"{ref_mode} | none | {ref:.1f} | {n / ref:.1f} | 1.00 |", flush=True)
        for mode in modes:
            for method in args.temporal.split(","):
                dt = command(video, tmp / f"cmd-{verb}-{mode}-{method}", args.model, verb,
                             method, mode)
                print(f"| segme {verb} | overlapped (the command, start-up included) | {mode} "
                      f"| {method} | {dt:.1f} | {n / dt:.1f} | {ref / dt:.2f} |", flush=True)

    for seg in segs.values():  # the runtime's first calls are slow: not the camera's
        warm = seg.streamer("none")
        for _ in range(5):
            warm.push(np.zeros((size[1], size[0], 3), np.uint8))
    print(f"\nlive path, the clip paced at {args.pace:g} fps as a camera, temporal "
          f"{DEFAULT_VIDEO_METHOD}:\n")
    print("| job | upsampling | sinks | frames | dropped | fps at the sinks "
          "| glass-to-glass median ms | p95 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for verb in ("blur", "replace"):
        for mode, seg in segs.items():
            for outputs in args.outputs.split(","):
                r = live(video, seg, DEFAULT_VIDEO_METHOD, args.pace, verb, outputs, tmp)
                print(f"| segme {verb} 0 | {mode} | {r['sinks']} | {r['frames']} | "
                      f"{r['dropped']} | {r['fps']:.1f} | {r['median_ms']:.1f} | "
                      f"{r['p95_ms']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
