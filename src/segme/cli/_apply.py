"""What the verbs (mask, cutout, replace, blur) share: sources in, files out.

A verb supplies ``render(image, alpha, path) -> (array, suffix)``; this module expands the
source, runs the model, writes ``<out>/<stem><suffix>`` atomically, never over an input, in
parallel, with a progress bar, and reports unreadable files at the end. A video source is
rendered frame by frame into ``<out>/<stem>.mp4`` (``.mov`` with alpha for RGBA output),
frame rate and audio kept.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

Render = Callable[[np.ndarray, np.ndarray, Path], tuple[np.ndarray, str]]


def same_suffix(path: Path) -> str:
    """Keep the input's format for opaque outputs where it can hold RGB; else PNG."""
    s = path.suffix.lower()
    return s if s in (".jpg", ".jpeg", ".png", ".webp") else ".png"


def apply(source: str, out: Path, model: Path | None, threads: int | None, jobs: int,
          render: Render, duration: float | None = None, temporal: str | None = None,
          tta: str | None = None, upsample: str | None = None) -> None:
    """Run ``render`` on every image of ``source``; exit code 1 if any file was skipped.

    ``temporal`` (``segme.temporal``; None: ``DEFAULT_VIDEO_METHOD``) applies to videos and
    cameras only, ``tta`` (``segme.segmenter.TTA``) to images only; ``upsample``
    (``segme.postprocess``; None: guided for images, bilinear for videos and cameras) to
    all."""
    from rich.progress import Progress

    from segme.io.camera import Camera, is_camera
    from segme.io.images import ImageError, read_image, write_image
    from segme.io.sources import expand_images
    from segme.io.video import is_video
    from segme.postprocess import check_upsample
    from segme.segmenter import Segmenter
    from segme.temporal import DEFAULT_VIDEO_METHOD, parse_method

    video_source = is_camera(source) or is_video(source)
    if temporal is not None and not video_source:
        raise ValueError("--temporal applies to videos and cameras, not to images")
    if tta and video_source:
        raise ValueError("--tta applies to images, not to videos and cameras")
    temporal = temporal or DEFAULT_VIDEO_METHOD
    if upsample is not None:
        check_upsample(upsample)
    if is_camera(source):
        seg = Segmenter(model, threads=threads, upsample=upsample)
        parse_method(temporal, seg.card)  # a bad --temporal fails before the camera opens
        camera = Camera(int(source), duration)
        out.mkdir(parents=True, exist_ok=True)
        apply_camera(camera, out / f"camera{source}-{time.strftime('%Y%m%d-%H%M%S')}", seg,
                     render, temporal)
        return
    if is_video(source):
        out.mkdir(parents=True, exist_ok=True)
        seg = Segmenter(model, threads=threads, upsample=upsample)
        parse_method(temporal, seg.card)  # a bad --temporal fails before any output exists
        apply_video(Path(source), out, seg, render, temporal)
        return
    # a bad model or --tta fails first
    seg = Segmenter(model, threads=threads, tta=tta, upsample=upsample)
    files = expand_images(source)
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            raise ValueError(f"two inputs would write the same output name {f.stem!r}: "
                             f"{stems[f.stem]} and {f}; process them separately")
        stems[f.stem] = f
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise PermissionError(f"output folder is not writable: {out}")
    jobs = max(1, min(jobs, len(files)))
    inputs = {f.resolve() for f in files}

    def one(path: Path) -> str | None:
        try:
            image = read_image(path)
            array, suffix = render(image, seg(image), path)
            target = out / f"{path.stem}{suffix}"
            if target.resolve() in inputs:
                return f"{path}: refusing to overwrite an input; choose another --out"
            write_image(target, array)
        except (ImageError, ValueError, OSError) as e:
            return str(e).splitlines()[0]
        return None

    problems = []
    with Progress(transient=True, disable=not sys.stderr.isatty()) as bar, \
            ThreadPoolExecutor(jobs) as pool:
        task = bar.add_task("segmenting", total=len(files))
        for message in pool.map(one, files):
            if message:
                problems.append(message)
            bar.advance(task)
    done = len(files) - len(problems)
    print(f"wrote {done} of {len(files)} images to {out}")
    for message in problems:
        print(f"skipped: {message}", file=sys.stderr)
    if problems:
        raise SystemExit(1)


def _write_rendered(stream, stem: Path, fps, audio_from: Path | None = None,
                    source: Path | None = None, timing=None) -> tuple[Path, int]:
    """Write rendered frames to ``<stem>.mp4``, or ``<stem>.mov`` when they carry alpha
    (decided by the first frame); never over ``source``. Returns (file, frames written)."""
    import itertools

    from segme.io.video import write_video

    first = next(stream, None)
    if first is None:
        raise ValueError(f"{source or 'the camera'} gave no frames")
    target = Path(f"{stem}{'.mov' if first.ndim == 3 and first.shape[2] == 4 else '.mp4'}")
    if source is not None and target.resolve() == source.resolve():
        raise ValueError(f"{source}: refusing to overwrite the input; choose another --out")
    n = write_video(itertools.chain([first], stream), target, fps, audio_from=audio_from,
                    timing=timing)
    return target, n


def rendered_pairs(frames: Iterable[np.ndarray], stream, render: Render, path: Path,
                   depth: int = 2) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(frame, rendered) pairs, in order, with the model + temporal step and the rendering
    each in their own thread, overlapping with whatever consumes the pairs (the encoder).
    ``depth``: frames each stage may run ahead (1 for live sources: less latency)."""
    from segme.io.pipeline import prefetch
    from segme.temporal import stream_pairs

    pairs = prefetch(stream_pairs(stream, frames), depth)
    # one rendering thread keeps frame order, which a moving background depends on
    return prefetch(((frame, render(frame, alpha, path)[0]) for frame, alpha in pairs), depth)


def apply_video(path: Path, out: Path, seg, render: Render, temporal: str = "none") -> Path:
    """Segment and render every frame of a video; returns the written file.

    Decoding, segmentation, rendering and encoding overlap (``segme.io.pipeline``)."""
    from rich.progress import Progress

    from segme.io.pipeline import prefetch
    from segme.io.video import VideoReader

    stream = seg.streamer(temporal)
    with VideoReader(path) as reader, Progress(transient=True,
                                              disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(f"{path.name}", total=reader.frames or None)

        def rendered():
            for _, array in rendered_pairs(prefetch(reader, depth=4), stream, render, path):
                yield array
                bar.advance(task)

        target, n = _write_rendered(rendered(), out / path.stem, reader.fps,
                                    path if reader.has_audio else None, source=path,
                                    timing=reader)
    print(f"wrote {n} frames at {float(reader.fps):.3g} fps to {target}"
          + (" with the audio track" if reader.has_audio else ""))
    return target


def apply_camera(camera, stem: Path, seg, render: Render, temporal: str = "none") -> Path:
    """Live: segment camera frames until Ctrl-C / ``--duration``, show them where a window
    can open, and write ``<stem>.mp4`` (``.mov`` with alpha), finalised on Ctrl-C too.

    The camera is read in its own thread and only its newest frame is taken, so a slow
    step drops frames instead of piling up latency; the frames in flight when Ctrl-C comes
    are still written."""
    from fractions import Fraction

    from segme.io.camera import Preview
    from segme.io.pipeline import latest

    preview = Preview.open(f"segme - {stem.name}")
    if preview is None:
        print("no display (or OpenCV without GUI): writing to a file only; Ctrl-C stops",
              file=sys.stderr)
    frames = latest(camera)

    def rendered():
        for _, array in rendered_pairs(frames, seg.streamer(temporal), render, stem, depth=1):
            if preview is not None and not preview.show(array):
                camera.stop.set()
            yield array

    try:
        with camera.sigint_stops():
            target, n = _write_rendered(rendered(), stem,
                                        Fraction(camera.fps).limit_denominator(1001))
    finally:
        if preview is not None:
            preview.close()
    print(f"wrote {n} frames to {target}" + (f" ({frames.dropped} camera frames dropped "
                                             "to keep up)" if frames.dropped else ""))
    return target
