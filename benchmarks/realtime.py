"""Real-time video: end-to-end frames per second, and the webcam path's glass-to-glass latency.

1. ``segme replace`` (green screen) and ``segme blur`` on a 1280x720 clip with its audio
   track, run as the real command (start-up included), for each ``--temporal`` method;
   beside them, in the same run, the same work done one frame after another in one thread
   (decode, segment, composite, encode: the pipeline before it was overlapped) as the
   reference that the speed-up is measured against.
2. The live path (``segme blur 0``): a camera stood in for by the clip paced at 30 fps
   (``Camera(..., pace=30)``), read in its own thread keeping only the newest frame, then
   the same overlapped stages as the CLI. Latency = the time from a frame's release by the
   paced source to its composited frame reaching the sink (where the window shows it and
   the encoder takes it); also the frames shown per second and the frames dropped.

    python benchmarks/realtime.py --video-from ../shared/data/video/talking_katiehill_000.mp4

``--video-from`` is scaled to 720 px high and centred on a blurred copy of itself
(1280x720, audio kept); pass ``--video`` to use a 1280x720 file as it is.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
from deploy import make_720p

from segme import effects
from segme.cli._apply import rendered_pairs
from segme.io.camera import Camera
from segme.io.pipeline import latest
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


def live(video: Path, seg: Segmenter, temporal: str, fps: float, out: Path) -> dict:
    """The camera path on a paced file: latency per shown frame, shown fps, drops."""
    camera = Camera(cv2.VideoCapture(str(video)), pace=fps)
    released: dict[int, float] = {}

    def timed():
        for f in camera:
            released[id(f)] = time.perf_counter()  # alive frames keep distinct ids
            yield f

    frames = latest(timed())
    latency, shown = [], []

    def sink():
        for frame, array in rendered_pairs(frames, seg.streamer(temporal), RENDER["blur"],
                                           video, depth=1):  # as apply_camera
            now = time.perf_counter()
            latency.append((now - released.pop(id(frame))) * 1000.0)
            shown.append(now)
            yield array

    n = write_video(sink(), out, Fraction(fps).limit_denominator(1001))
    span = shown[-1] - shown[0] if len(shown) > 1 else float("nan")
    return {"frames": n, "dropped": frames.dropped, "fps": (len(shown) - 1) / span,
            "median_ms": statistics.median(latency),
            "p95_ms": statistics.quantiles(latency, n=20)[-1]}


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
    for verb in ("replace", "blur"):
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

    print(f"\nlive path (blur), the clip paced at {args.pace:g} fps as a camera:\n")
    print("| upsampling | temporal | frames shown | dropped | shown fps "
          "| glass-to-glass median ms | p95 ms |")
    print("|---|---|---|---|---|---|---|")
    for mode, seg in segs.items():
        for method in args.temporal.split(","):
            r = live(video, seg, method, args.pace, tmp / f"live-{mode}-{method}.mp4")
            print(f"| {mode} | {method} | {r['frames']} | {r['dropped']} | {r['fps']:.1f} | "
                  f"{r['median_ms']:.1f} | {r['p95_ms']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
