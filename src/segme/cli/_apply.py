"""What the verbs (mask, cutout, replace, blur) share: sources in, files out.

A verb supplies ``render(image, alpha, path) -> array`` and the suffix of its image outputs;
this module expands the sources, runs the model, writes ``<out>/<stem><suffix>`` (or the one
file ``-o`` names, or standard output) atomically, never over an input, in parallel, with a
progress bar, and reports unreadable files at the end. A video source is rendered frame by
frame into ``<out>/<stem>.mp4`` (``.mov`` with alpha for RGBA output), frame rate and audio
kept. A camera's frames go to sinks (``segme.io.sinks``: the file, a window, a virtual
camera), with keys that change the picture live (``segme.cli._live``).
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from segme.io.sources import ImageInput

if TYPE_CHECKING:
    from segme.cli._live import Look
    from segme.io.sinks import Sink

Render = Callable[[np.ndarray, np.ndarray, Path], np.ndarray]
# the input's suffix ("" when unknown) -> the output's
Suffix = Callable[[str], str]
# what an output file may be called, by what it holds
IMAGE_OUT = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
TRANSPARENT_IMAGE_OUT = (".png", ".webp", ".tif", ".tiff")
VIDEO_OUT = (".mp4", ".mov")


def same_suffix(suffix: str) -> str:
    """Keep the input's format for opaque outputs where it can hold RGB; else PNG."""
    s = suffix.lower()
    return s if s in (".jpg", ".jpeg", ".png", ".webp") else ".png"


def png(suffix: str) -> str:
    return ".png"


def file_target(out: str) -> Path | None:
    """``--out`` read as one file's name: it has a file extension (``result.png``, not
    ``runs.v2``), is not an existing folder and does not end with a path separator."""
    if out.endswith(("/", os.sep)) or Path(out).is_dir():
        return None
    suffix = Path(out).suffix.lower()
    if suffix in IMAGE_OUT + VIDEO_OUT or re.fullmatch(r"\.[a-z]{2,4}", suffix):
        return Path(out)
    return None


def check_target(target: Path, video: bool, transparent: bool) -> None:
    """Refuse an output file name whose format cannot hold what the verb writes."""
    suffix = target.suffix.lower()
    if video:
        allowed = (".mov",) if transparent else VIDEO_OUT
        what = "a video with transparency" if transparent else "a video"
    else:
        allowed = TRANSPARENT_IMAGE_OUT if transparent else IMAGE_OUT
        what = "an image with transparency" if transparent else "an image"
    if suffix not in allowed:
        raise ValueError(f"cannot write {what} to {target.name}: use {', '.join(allowed)}")


def plan_targets(inputs: list[ImageInput], folder: Path, suffix: Suffix,
                 notes: list[str]) -> dict[ImageInput, Path]:
    """Where each image's output goes inside ``folder`` (``rel`` + the verb's suffix).

    Files that are this run's own outputs (a re-run into the input folder) are not inputs;
    inputs that would write the same name (``a.jpg`` and ``a.png``) both keep their whole
    name (``a.jpg.png``, ``a.png.png``), numbered if that still clashes."""
    targets = {i: folder / i.rel.parent / f"{i.rel.name}{suffix(i.suffix)}" for i in inputs}
    producers: dict[Path, list[ImageInput]] = {}
    for i, t in targets.items():
        producers.setdefault(t.resolve(), []).append(i)
    earlier = [i for i in targets if i.path is not None
               and any(j is not i for j in producers.get(i.path.resolve(), []))]
    for i in earlier:
        del targets[i]
    if earlier:
        notes.append(f"{len(earlier)} file(s) that this run writes (earlier outputs) not "
                     "read as inputs")
    by_target: dict[Path, list[ImageInput]] = {}
    for i, t in targets.items():
        by_target.setdefault(t.resolve(), []).append(i)
    taken = set(by_target)
    for group in (g for g in by_target.values() if len(g) > 1):
        renamed = []
        for i in group:
            name = f"{i.rel.name}{i.suffix}"
            t = targets[i].with_name(f"{name}{suffix(i.suffix)}")
            k = 2
            while t.resolve() in taken:
                t, k = targets[i].with_name(f"{name}-{k}{suffix(i.suffix)}"), k + 1
            taken.add(t.resolve())
            targets[i] = t
            renamed.append(t.name)
        notes.append(f"{', '.join(i.name for i in group)} would write the same file: "
                     f"written as {', '.join(renamed)}")
    return targets


def apply(sources: list[str], out: str | None, model: Path | None, threads: int | None,
          jobs: int, render: Render, suffix: Suffix, transparent: bool = False,
          recursive: bool = False, duration: float | None = None, temporal: str | None = None,
          tta: str | None = None, upsample: str | None = None, virtual_camera: bool = False,
          look: Look | None = None, runtime: str | None = None) -> None:
    """Run ``render`` on every image, video or camera that ``sources`` name; exit code 1
    if any image was skipped.

    ``out``: a folder (created; None: ``out``), or one file's name when there is one input,
    ``-`` for standard output (one image). ``suffix`` names image outputs from the input's
    suffix; ``transparent``: the verb writes an alpha channel (refuses JPEG, MP4).
    ``temporal`` (``segme.temporal``; None: ``DEFAULT_VIDEO_METHOD``) applies to videos and
    cameras only, ``tta`` (``segme.segmenter.TTA``) to images only; ``upsample``
    (``segme.postprocess``; None: guided for images, bilinear for videos and cameras) to
    all. A camera also takes ``virtual_camera`` (then it records only when ``out`` is
    given), ``look`` (the ``render`` whose view keys change live) and the model ``bgsub``
    (``segme.bgsub``). ``runtime`` (``segme.runtime.load_backend``; None: by suffix)."""
    from segme.bgsub import NAME as BASELINE
    from segme.io.camera import is_camera
    from segme.io.sources import expand_sources, is_url
    from segme.io.video import is_video
    from segme.postprocess import check_upsample
    from segme.segmenter import Segmenter
    from segme.temporal import DEFAULT_VIDEO_METHOD, parse_method

    cameras = [s for s in sources if is_camera(s)]
    videos = [s for s in sources if is_video(s) and not is_url(s) and s not in cameras]
    baseline = model is not None and str(model) == BASELINE
    if cameras and len(sources) > 1:
        raise ValueError("a camera is read alone: give its index as the only source")
    if virtual_camera and not cameras:
        raise ValueError("--virtual-camera takes a camera source (an index such as 0)")
    if baseline and not cameras:
        raise ValueError("--model bgsub (background subtraction) learns the empty scene from "
                         "a camera; measure it on videos with segme eval-video --temporal "
                         "bgsub")
    if temporal is not None and not (cameras or videos):
        raise ValueError("--temporal applies to videos and cameras, not to images")
    if temporal is not None and baseline:
        raise ValueError("--temporal smooths a model's alpha, not --model bgsub's")
    if tta and (cameras or videos):
        raise ValueError("--tta applies to images, not to videos and cameras")
    temporal = temporal or DEFAULT_VIDEO_METHOD
    if upsample is not None:
        check_upsample(upsample)
    record = out is not None or not virtual_camera
    out = "out" if out is None else out
    to_stdout = out == "-"
    single = file_target(out)
    if to_stdout and (cameras or videos):
        raise ValueError("-o - (standard output) takes photos, not videos or cameras")
    if single is not None and (cameras or videos) and len(sources) == 1:
        check_target(single, video=True, transparent=transparent)
    for v in videos:
        if not Path(v).is_file():
            raise FileNotFoundError(f"source not found: {v}")
    folder = Path(out)
    if cameras:
        _run_camera(int(cameras[0]), folder if record else None, single,
                    None if baseline else model, baseline, threads, upsample, temporal,
                    duration, render, virtual_camera, look, runtime)
        return
    # a bad model, --tta or --temporal fails before any output exists
    seg = Segmenter(model, threads=threads, tta=tta, upsample=upsample, runtime=runtime)
    if videos:
        parse_method(temporal, seg.card)
    notes: list[str] = []
    images = [s for s in sources if s not in videos]
    inputs = expand_sources(images, recursive, exclude=None if single or to_stdout else folder,
                            notes=notes) if images else []
    count = len(inputs) + len(videos)
    if (single is not None or to_stdout) and count != 1:
        raise ValueError(f"-o {out} names one file, but {count} inputs were given; give a "
                         "folder (an existing one, or a name ending in /)")
    if single is not None and inputs:
        check_target(single, video=False, transparent=transparent)
    for v in videos:
        path = Path(v)
        target = single or folder / f"{path.stem}{'.mov' if transparent else '.mp4'}"
        target.parent.mkdir(parents=True, exist_ok=True)
        apply_video(path, target, seg, render, temporal)
    if not inputs:
        return
    if to_stdout:
        _one_to_stdout(inputs[0], seg, render, suffix)
        return
    targets = {inputs[0]: single} if single is not None else plan_targets(inputs, folder,
                                                                          suffix, notes)
    base = single.parent if single is not None else folder
    base.mkdir(parents=True, exist_ok=True)
    if not os.access(base, os.W_OK):
        raise PermissionError(f"output folder is not writable: {base}")
    _apply_images(targets, seg, render, jobs, str(single or folder), notes)


def _apply_images(targets: dict[ImageInput, Path], seg, render: Render, jobs: int, where: str,
                  notes: list[str]) -> None:
    """Read, segment, render and write each image to its target, ``jobs`` at a time;
    unreadable ones are reported at the end (exit code 1)."""
    from rich.progress import Progress

    from segme.io.images import ImageError, write_image

    items = list(targets.items())
    jobs = max(1, min(jobs, len(items)))
    inputs = {i.path.resolve() for i, _ in items if i.path is not None}

    def one(item: tuple[ImageInput, Path]) -> str | None:
        source, target = item
        try:
            if target.resolve() in inputs:
                return f"{source.name}: refusing to overwrite an input; choose another --out"
            image = source.read()
            array = render(image, seg(image), Path(source.name))
            target.parent.mkdir(parents=True, exist_ok=True)
            write_image(target, array)
        except (ImageError, ValueError, OSError) as e:
            return str(e).splitlines()[0]
        return None

    problems = []
    with Progress(transient=True, disable=not sys.stderr.isatty()) as bar, \
            ThreadPoolExecutor(jobs) as pool:
        task = bar.add_task("segmenting", total=len(items))
        for message in pool.map(one, items):
            if message:
                problems.append(message)
            bar.advance(task)
    done = len(items) - len(problems)
    print(f"wrote {done} of {len(items)} images to {where}")
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    for message in problems:
        print(f"skipped: {message}", file=sys.stderr)
    if problems:
        raise SystemExit(1)


def _one_to_stdout(source: ImageInput, seg, render: Render, suffix: Suffix) -> None:
    """One image, rendered and written to standard output in the verb's format."""
    from segme.io.images import encode_image

    if sys.stdout.isatty():
        raise ValueError("-o - writes image data to standard output, which is a terminal: "
                         "redirect it to a file or a pipe")
    image = source.read()
    data = encode_image(render(image, seg(image), Path(source.name)), suffix(source.suffix))
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _write_rendered(stream, stem: Path, fps, audio_from: Path | None = None,
                    source: Path | None = None, timing=None,
                    target: Path | None = None) -> tuple[Path, int]:
    """Write rendered frames to ``target``, or else to ``<stem>.mp4`` (``<stem>.mov`` when
    they carry alpha, decided by the first frame); never over ``source``. Returns (file,
    frames written)."""
    import itertools

    from segme.io.video import write_video

    first = next(stream, None)
    if first is None:
        raise ValueError(f"{source or 'the camera'} gave no frames")
    if target is None:
        alpha = first.ndim == 3 and first.shape[2] == 4
        target = Path(f"{stem}{'.mov' if alpha else '.mp4'}")
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
    return prefetch(((frame, render(frame, alpha, path)) for frame, alpha in pairs), depth)


def apply_video(path: Path, target: Path, seg, render: Render, temporal: str = "none") -> Path:
    """Segment and render every frame of a video into ``target`` (.mp4, or .mov for
    frames with alpha); returns the written file.

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

        target, n = _write_rendered(rendered(), target.with_suffix(""), reader.fps,
                                    path if reader.has_audio else None, source=path,
                                    timing=reader, target=target)
    print(f"wrote {n} frames at {float(reader.fps):.3g} fps to {target}"
          + (" with the audio track" if reader.has_audio else ""))
    return target


def _run_camera(index: int, folder: Path | None, single: Path | None, model: Path | None,
                baseline: bool, threads: int | None, upsample: str | None, temporal: str,
                duration: float | None, render: Render, virtual_camera: bool,
                look: Look | None, runtime: str | None = None) -> None:
    """``apply`` for camera ``index``: the model (or with ``baseline`` the background
    subtraction) and the sinks the options ask for (``folder``: record there, None: not),
    then ``apply_camera`` and a summary of where the frames went."""
    from fractions import Fraction

    from segme.bgsub import LEARN_FRAMES, BackgroundSubtraction
    from segme.io.camera import Camera
    from segme.io.sinks import FileSink, VirtualCamera, Window
    from segme.segmenter import Segmenter
    from segme.temporal import parse_method

    if baseline:
        stream = BackgroundSubtraction()
    else:  # a bad model or --temporal fails before the camera opens
        seg = Segmenter(model, threads=threads, upsample=upsample, runtime=runtime)
        parse_method(temporal, seg.card)
        stream = seg.streamer(temporal)
    if look is not None:
        look.more_backgrounds()
    camera = Camera(index, duration)
    fps = Fraction(camera.fps).limit_denominator(1001)

    def stop_on_q(key: str) -> None:  # without a Look: q and Esc stop
        if key in ("q", "\x1b"):
            camera.stop.set()

    sinks: list = []
    try:
        if virtual_camera:  # first: without a device there is no point in the rest
            vcam = VirtualCamera(*camera.size, camera.fps)
            sinks.append(vcam)
            print(f"virtual camera {vcam.device}: {camera.size[0]}x{camera.size[1]} at "
                  f"{camera.fps:.3g} fps; pick it as the camera of the call", file=sys.stderr)
        if folder is not None:
            if single is None:
                folder.mkdir(parents=True, exist_ok=True)
            stem = folder / f"camera{index}-{time.strftime('%Y%m%d-%H%M%S')}"
            sinks.append(FileSink(lambda frames: _write_rendered(frames, stem, fps,
                                                                 target=single)))
        window = Window.open(f"segme - camera {index}", look.press if look else stop_on_q,
                             look.status if look else None)
        if window is not None:
            sinks.append(window)
        elif folder is not None and not virtual_camera:
            print("no display (or OpenCV without GUI): writing to a file only; Ctrl-C stops",
                  file=sys.stderr)
    except BaseException:
        with suppress(Exception):
            _close(sinks)
        camera.cap.release()
        raise
    if baseline:
        print(f"learning the empty scene from the first {LEARN_FRAMES} frames: step out of "
              "view", file=sys.stderr)
    keys = _terminal_keys(look if window is None else None)
    with keys:
        n, dropped = apply_camera(camera, stream, render, sinks, look)
    for sink in sinks:
        if isinstance(sink, FileSink):
            print(f"wrote {sink.result[1]} frames to {sink.result[0]}")
        elif isinstance(sink, VirtualCamera):
            print(f"sent {sink.frames} frames to the virtual camera {sink.device}")
    if dropped:
        print(f"{dropped} camera frames dropped to keep up", file=sys.stderr)


def _terminal_keys(look: Look | None):
    """Keys from the terminal for ``look`` (printing what each did), or a no-op."""
    from contextlib import nullcontext

    from segme.cli._live import KEYS, TerminalKeys

    if look is None:
        return nullcontext()

    def on_key(key: str) -> None:
        said = look.press(key)
        if said:
            print(said, file=sys.stderr)

    keys = TerminalKeys(on_key)
    if keys.active:
        print(KEYS, file=sys.stderr)
    return keys


def _close(sinks: Sequence[Sink]) -> None:
    """Close every sink, even when one fails; raise the first failure."""
    error = None
    for sink in sinks:
        try:
            sink.close()
        except BaseException as e:
            error = error or e
    if error is not None:
        raise error


def apply_camera(camera, stream, render: Render, sinks: Sequence[Sink],
                 look: Look | None = None) -> tuple[int, int]:
    """Live: segment camera frames until Ctrl-C, ``--duration``, the end of the source or
    ``look.stopped``, and hand each rendered frame to every sink, in order; the sinks are
    closed at the end (a file is finalised on Ctrl-C too). Returns (frames rendered,
    camera frames dropped).

    ``stream``: the model's ``Stream`` (or anything with its ``push`` / ``flush``, e.g. the
    baseline). While ``look.paused``, live sinks get the last frame shown again and
    recording ones nothing. The camera is read in its own thread and only its newest frame
    is taken, so a slow step drops frames instead of piling up latency; the frames in
    flight when Ctrl-C comes are still rendered and written."""
    from segme.io.pipeline import latest

    frames = latest(camera)
    shown, n = None, 0
    try:
        with camera.sigint_stops():
            for _, array in rendered_pairs(frames, stream, render, Path("camera"), depth=1):
                n += 1
                paused = look is not None and look.paused and shown is not None
                shown = shown if paused else array
                for sink in sinks:
                    if sink.live or not paused:
                        sink.write(shown)
                if look is not None and look.stopped:
                    camera.stop.set()
    except BaseException:
        with suppress(Exception):  # the first error is the one to report
            _close(sinks)
        raise
    _close(sinks)
    return n, frames.dropped
