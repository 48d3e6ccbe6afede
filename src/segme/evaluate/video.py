"""The temporal benchmark: one model, several temporal methods, synthetic and real clips.

Two sets of clips, both run through ``Segmenter.stream`` (the same path as ``segme mask
video.mp4 --temporal ...``), one fresh stream per clip and method:

- ``motion``: each of ``clips`` image/mask pairs spread evenly over a folder becomes a clip of
  ``frames`` frames filmed by a moving virtual camera (``segme.data.motion``, seeded by the
  pair's index, so every method and every run sees the same clips), with exact masks:
  ``fg_iou``, ``dtssd`` and ``instability``.
- ``clips``: real videos without masks, all frames or the first ``max_frames``:
  ``instability`` only.

Metric definitions: ``segme.evaluate.temporal``. ``fps`` is frames per second of the model
and the temporal method alone (``Segmenter.stream``), without decoding, synthesising or
scoring.

Beside the model's methods, ``bgsub`` is the seed project's baseline without a model
(``segme.bgsub``), given the empty scene it needs: for a motion clip, the photo with the
person painted out (OpenCV's inpainting of the dilated mask) seen by the clip's camera at
its first frame, as if captured before the person sat down; for a real clip, where nobody
ever leaves, the mean of its first ``LEARN_FRAMES`` frames, as the seed learns it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from itertools import islice
from pathlib import Path

import cv2
import numpy as np

from segme.bgsub import LEARN_FRAMES, NAME, BackgroundSubtraction, mean_background
from segme.data.folders import find_pairs, load_pair
from segme.data.motion import motion_clip
from segme.evaluate.metrics import _as_alpha
from segme.evaluate.temporal import TemporalAccumulator
from segme.segmenter import Segmenter
from segme.temporal import methods_for, parse_method

SETS = ("motion", "clips")
BASELINE = NAME  # the background-subtraction baseline, a method beside the model's
TABLE_KEYS = ("frames", "fg_iou", "dtssd", "instability", "fps")


class _Feed:
    """Frames on their way into a stream: keeps each one until its alpha comes back, and
    the time spent producing them (decoding), which is not the model's."""

    def __init__(self, frames: Iterable[np.ndarray]) -> None:
        self._frames = iter(frames)
        self.pending: deque[np.ndarray] = deque()
        self.seconds = 0.0

    def __iter__(self) -> Iterator[np.ndarray]:
        return self

    def __next__(self) -> np.ndarray:
        t0 = time.perf_counter()
        try:
            frame = next(self._frames)
        finally:
            self.seconds += time.perf_counter() - t0
        self.pending.append(frame)
        return frame


def run_clip(segmenter: Segmenter, method: str, frames: Iterable[np.ndarray],
             acc: TemporalAccumulator, truths: Sequence[np.ndarray] | None = None,
             background: np.ndarray | None = None) -> float:
    """Stream one clip through ``segmenter`` and score every alpha in ``acc``.

    Args:
        segmenter: the model.
        method: temporal method or ``+`` chain (``segme.temporal``), or ``bgsub``.
        frames: uint8 [H, W, 3] RGB frames in order (a list or a lazy decoder).
        acc: where the clip is scored; ``end_clip()`` is called at the end.
        truths: float32 [H, W] true alphas, one per frame, or None.
        background: ``bgsub`` only: the empty scene (``segme.bgsub.BackgroundSubtraction``).

    Returns:
        Seconds spent in the model and the temporal method (or the baseline) for this clip.
    """
    feed = _Feed(frames)
    if method == BASELINE:
        if background is None:
            raise ValueError("bgsub needs the empty scene: pass background")
        subtract = BackgroundSubtraction(background)
        alphas = (subtract(f) for f in feed)
    else:
        alphas = segmenter.stream(feed, temporal=method)
    seconds, t = 0.0, 0
    while True:
        t0 = time.perf_counter()
        alpha = next(alphas, None)
        seconds += time.perf_counter() - t0
        if alpha is None:
            break
        # stream() yields one alpha per frame in order, so this alpha is the oldest frame's.
        acc.add(alpha, feed.pending.popleft(), None if truths is None else truths[t])
        t += 1
    acc.end_clip()
    return seconds - feed.seconds


def check_methods(methods: str | Sequence[str] | None, card) -> list[str]:
    """Validate a comma list (or sequence) of temporal methods for a model.

    Args:
        methods: e.g. ``"none,ema,ofd+ema,bgsub"``; None or empty: every method the model
            supports (``segme.temporal.methods_for``).
        card: the model's card.

    Returns:
        The methods, normalised (``"OFD + ema"`` -> ``"ofd+ema"``), without repeats.

    Raises:
        ValueError: an unknown name (the message lists the known ones) or a method the
            model does not support.
    """
    if isinstance(methods, str):
        methods = methods.split(",")
    names = [m.strip() for m in methods or () if m.strip()]
    if not names:
        return methods_for(card)

    def one(m: str) -> str:
        if m.lower() == BASELINE:
            return BASELINE
        try:
            return "+".join(parse_method(m, card))
        except ValueError as e:
            raise ValueError(f"{e}; or {BASELINE}, the background-subtraction baseline"
                             if "unknown" in str(e) else str(e)) from None

    return list(dict.fromkeys(one(m) for m in names))


def evaluate_video(
    model: Segmenter | str | Path | None = None,
    data: str | Path | None = None,
    videos: Sequence[str | Path] = (),
    methods: str | Sequence[str] | None = None,
    clips: int = 24,
    frames: int = 48,
    max_frames: int | None = None,
    threads: int | None = None,
    progress: bool = False,
    upsample: str = "bilinear",
) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """Run the temporal benchmark.

    Args:
        model: a Segmenter, a model file, or None for the built-in model.
        data: folder with images and masks (any layout of ``segme.data.folders``) for the
            ``motion`` set, or None.
        videos: video files for the ``clips`` set (needs the ``video`` extra).
        methods: temporal methods to compare (see :func:`check_methods`).
        clips: number of image/mask pairs turned into motion clips (every k-th pair, so
            each source of a sorted set is represented).
        frames: frames per motion clip, at least 2.
        max_frames: read at most this many frames of each video (None: all).
        threads: inference threads when ``model`` is a path.
        progress: show a progress bar.
        upsample: ``bilinear`` (the protocol of docs/video.md) or ``guided``, when ``model``
            is a path (a Segmenter keeps its own).

    Returns:
        ``{method: {set: {"frames", "fg_iou", "dtssd", "instability", "fps"}}}`` with the
        sets that had input (``fg_iou`` and ``dtssd`` for ``motion`` only); the values are
        ``TemporalAccumulator.results()`` plus ``fps``.

    Raises:
        FileNotFoundError: the data folder or a video is missing.
        ValueError: no input, bad counts, a bad dataset, an unknown or unsupported method.
    """
    videos = [Path(v) for v in videos]
    if data is None and not videos:
        raise ValueError("nothing to evaluate: give --data DIR (images with masks) and/or "
                         "--videos FILE")
    if clips < 1 or frames < 2:
        raise ValueError(f"need at least 1 clip of at least 2 frames, got clips={clips}, "
                         f"frames={frames}")
    if max_frames is not None and max_frames < 2:
        raise ValueError(f"--max-frames must be at least 2 (a transition), got {max_frames}")
    if data is not None and not Path(data).is_dir():
        raise FileNotFoundError(f"--data folder not found: {data}")
    for v in videos:
        if not v.is_file():
            raise FileNotFoundError(f"video not found: {v}")
    seg = model if isinstance(model, Segmenter) else Segmenter(model, threads,
                                                                   upsample=upsample)
    names = check_methods(methods, seg.card)
    pairs = []
    if data is not None:  # spread over the set (names sort by source): every k-th pair
        every = find_pairs(data)
        pairs = every[:: max(1, len(every) // clips)][:clips]

    accs = {(m, s): TemporalAccumulator() for m in names for s in SETS}
    seconds = dict.fromkeys(accs, 0.0)
    with ExitStack() as stack:
        advance = _progress_bar(stack, len(names) * (len(pairs) + len(videos)), progress)
        # Clip outside, method inside: each motion clip is made once and shared.
        for index, pair in enumerate(pairs):
            image, mask = load_pair(pair)
            clip, truths = motion_clip(image, mask, frames=frames, seed=index)
            empty = (motion_clip(empty_scene(image, mask), mask, frames=1, seed=index)[0][0]
                     if BASELINE in names else None)
            for m in names:
                seconds[m, "motion"] += run_clip(seg, m, clip, accs[m, "motion"], truths,
                                                 empty)
                advance()
        if videos:
            from segme.io.video import VideoReader

            for path in videos:
                empty = None
                if BASELINE in names:
                    with VideoReader(path) as reader:
                        empty = mean_background(islice(reader, max_frames), LEARN_FRAMES)
                for m in names:
                    with VideoReader(path) as reader:
                        seconds[m, "clips"] += run_clip(seg, m, islice(reader, max_frames),
                                                        accs[m, "clips"], background=empty)
                    advance()

    results: dict[str, dict[str, dict[str, float | int | None]]] = {}
    for m in names:
        results[m] = {}
        for s in SETS:
            acc = accs[m, s]
            if (s == "motion" and not pairs) or (s == "clips" and not videos):
                continue
            row = acc.results()
            row["fps"] = row["frames"] / seconds[m, s] if seconds[m, s] > 0 else None
            results[m][s] = row
    return results


def empty_scene(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The photo without its person, for the baseline's empty scene: the mask (at least
    half person) dilated by 2% of the diagonal and painted in from around it (OpenCV's
    Navier-Stokes inpainting). A smooth guess of what is behind the person, so the baseline
    gets an easier empty scene than a real one (the person's colours rarely match it).

    Args:
        image: uint8 [H, W, 3] RGB.
        mask: its person alpha, float [H, W] in [0, 1] or uint8 0..255.
    """
    person = _as_alpha(mask, "mask") >= 0.5
    d = max(1, round(0.02 * float(np.hypot(*image.shape[:2]))))
    hole = cv2.dilate(person.astype(np.uint8),
                      cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * d + 1, 2 * d + 1)))
    return cv2.inpaint(image, hole, 5, cv2.INPAINT_NS)


def _progress_bar(stack: ExitStack, total: int, show: bool):
    """A transient rich progress bar on ``stack``; returns the function that advances it."""
    if not show:
        return lambda: None
    from rich.progress import Progress

    bar = stack.enter_context(Progress(transient=True))
    task = bar.add_task("temporal benchmark", total=total)
    return lambda: bar.advance(task)


def format_video_table(results: Mapping[str, Mapping[str, Mapping[str, float | None]]],
                       markdown: bool = False) -> str:
    """Render :func:`evaluate_video`'s results: one row per (method, set).

    Args:
        results: ``{method: {set: {...}}}``.
        markdown: a GitHub-flavoured markdown table instead of aligned plain text.

    Returns:
        The table without a trailing newline; a metric a set does not have shows ``-``.
    """
    header = ["method", "set", *TABLE_KEYS]
    body = [[m, s, *(_format_value(k, row.get(k)) for k in TABLE_KEYS)]
            for m, sets in results.items() for s, row in sets.items()]
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join(["---", "---"] + ["---:"] * len(TABLE_KEYS)) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
        for row in [header, *body]
    )


def _format_value(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if key == "frames":
        return str(int(value))
    if key == "fps":
        return f"{value:.1f}"
    return f"{value:.2f}"
