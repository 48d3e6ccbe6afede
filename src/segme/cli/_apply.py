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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

Render = Callable[[np.ndarray, np.ndarray, Path], tuple[np.ndarray, str]]


def same_suffix(path: Path) -> str:
    """Keep the input's format for opaque outputs where it can hold RGB; else PNG."""
    s = path.suffix.lower()
    return s if s in (".jpg", ".jpeg", ".png", ".webp") else ".png"


def apply(source: str, out: Path, model: Path | None, threads: int | None, jobs: int,
          render: Render, duration: float | None = None) -> None:
    """Run ``render`` on every image of ``source``; exit code 1 if any file was skipped."""
    from rich.progress import Progress

    from segme.io.camera import Camera, is_camera
    from segme.io.images import ImageError, read_image, write_image
    from segme.io.sources import expand_images
    from segme.io.video import is_video
    from segme.segmenter import Segmenter

    if is_camera(source):
        camera = Camera(int(source), duration)
        out.mkdir(parents=True, exist_ok=True)
        seg = Segmenter(model, threads=threads)
        apply_camera(camera, out / f"camera{source}-{time.strftime('%Y%m%d-%H%M%S')}", seg,
                     render)
        return
    if is_video(source):
        out.mkdir(parents=True, exist_ok=True)
        seg = Segmenter(model, threads=threads)
        apply_video(Path(source), out, seg, render)
        return
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
    seg = Segmenter(model, threads=threads)
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
                    source: Path | None = None) -> tuple[Path, int]:
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
    n = write_video(itertools.chain([first], stream), target, fps, audio_from=audio_from)
    return target, n


def apply_video(path: Path, out: Path, seg, render: Render) -> Path:
    """Segment and render every frame of a video; returns the written file."""
    from rich.progress import Progress

    from segme.io.video import VideoReader

    with VideoReader(path) as reader, Progress(transient=True,
                                              disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(f"{path.name}", total=reader.frames or None)

        def rendered():
            for frame in reader:
                yield render(frame, seg(frame), path)[0]
                bar.advance(task)

        target, n = _write_rendered(rendered(), out / path.stem, reader.fps,
                                    path if reader.has_audio else None, source=path)
    print(f"wrote {n} frames at {float(reader.fps):.3g} fps to {target}"
          + (" with the audio track" if reader.has_audio else ""))
    return target


def apply_camera(camera, stem: Path, seg, render: Render) -> Path:
    """Live: segment camera frames until Ctrl-C / ``--duration``, show them where a window
    can open, and write ``<stem>.mp4`` (``.mov`` with alpha), finalised on Ctrl-C too."""
    from fractions import Fraction

    from segme.io.camera import Preview

    preview = Preview.open(f"segme - {stem.name}")
    if preview is None:
        print("no display (or OpenCV without GUI): writing to a file only; Ctrl-C stops",
              file=sys.stderr)

    def rendered():
        for frame in camera:
            array = render(frame, seg(frame), stem)[0]
            if preview is not None and not preview.show(array):
                camera.stop.set()
            yield array

    try:
        target, n = _write_rendered(rendered(), stem,
                                    Fraction(camera.fps).limit_denominator(1001))
    finally:
        if preview is not None:
            preview.close()
    print(f"wrote {n} frames to {target}")
    return target
