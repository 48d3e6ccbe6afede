"""Streaming state for video: previous-mask prior, motion-aware smoothing, one-frame delay.

A ``Stream`` holds the state of one video: push frames in order, get ``(frame, alpha)``
pairs back in the same order. Everything temporal happens at the model's input size (a few
thousand pixels, so it costs well under a millisecond); the alpha is resized to the frame
only on the way out. A new scene (a cut: the frame's thumbnail differs a lot from the
previous one) flushes what is pending and starts from a clean state, so a mask never
smears from one shot into the next.

Methods (``METHODS``; join with ``+`` to chain, e.g. ``prior+ofd+ema``):

- ``none``: every frame on its own.
- ``ema``: exponential smoothing of alpha that backs off where the image moves: per pixel
  ``a = w * raw + (1 - w) * a_prev`` with ``w = clip(EMA_BASE + EMA_GAIN * motion, EMA_BASE, 1)``
  and ``motion`` the blurred absolute change of the grey image (0..1) since the last frame.
  Still hair stops shimmering; a moving arm is not dragged.
- ``flow``: the same smoothing, but the previous alpha is first moved along the optical
  flow (OpenCV's DIS, at the model's input size) so it lines up with the new frame, and the
  back-off uses what the flow cannot explain (the grey difference after warping). Smooths
  a person who moves or a camera that pans, where ``ema`` has to let go.
- ``ofd``: MODNet's one-frame-delay correction. Output is one frame late: where the alphas
  of frames t-1 and t+1 agree (within ``OFD_TOLERANCE``) and frame t differs from both,
  frame t takes their mean. Removes single-frame flicker.
- ``prior``: for models whose card lists ``prev_alpha`` (trained with simulated priors):
  the previous frame's alpha is fed back as the 4th input plane.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from segme.postprocess import check_upsample, restore
from segme.preprocess import Meta, check_channels, prepare, to_rgb

METHODS = ("none", "ema", "flow", "ofd", "prior")
DEFAULT_VIDEO_METHOD = "ema"  # what the CLI uses for videos and cameras (docs/video.md)
# chosen on the temporal benchmark (docs/video.md): 0.35 / 0.2 / 0.1 removed 24 / 34 / 42%
# of the instability of still regions with no loss of fg-IoU under motion
EMA_BASE = 0.1  # weight of the new frame where nothing moves (lower = smoother)
EMA_GAIN = 12.0  # how fast the weight goes to 1 with motion: full trust at 7.5% grey change
OFD_TOLERANCE = 0.1  # alpha difference below which two frames "agree"
CUT_THRESHOLD = 0.2  # mean absolute grey change of a 32x32 thumbnail (0..1) that is a cut
_THUMB = (32, 32)


def parse_method(text: str, card=None) -> tuple[str, ...]:
    """``"prior+ema"`` -> ("prior", "ema"); checks names and that the model supports them.

    Raises:
        ValueError: unknown name, or ``prior`` for a model without a prior input plane.
    """
    parts = tuple(p.strip().lower() for p in str(text).split("+") if p.strip()) or ("none",)
    for p in parts:
        if p not in METHODS:
            raise ValueError(f"unknown temporal method {p!r}; choose from {', '.join(METHODS)}"
                             " (chain with +, e.g. ofd+ema)")
    if card is not None and "prior" in parts and not card.stateful_inputs:
        raise ValueError(f"--temporal prior needs a model trained with a previous-frame input "
                         f"(a 4-channel card); {card.arch} has 3 input planes")
    parts = tuple(p for p in parts if p != "none") or ("none",)
    return parts


def methods_for(card) -> list[str]:
    """The single methods a model supports: ``prior`` only with a previous-frame plane."""
    return [m for m in METHODS if m != "prior" or card.stateful_inputs]


def thumbnail(grey: np.ndarray) -> np.ndarray:
    """float32 [32, 32] in [0, 1] of a grey image in [0, 1]: what cut detection compares."""
    return cv2.resize(grey, _THUMB, interpolation=cv2.INTER_AREA)


@dataclass
class _Item:
    frame: np.ndarray  # uint8 [H, W, 3], as pushed
    rgb: np.ndarray  # the frame in RGB order (the frame itself unless pushed as BGR)
    meta: Meta
    alpha: np.ndarray  # float32 [h, w] at the model's input size
    grey: np.ndarray  # float32 [h, w] in [0, 1], the frame as the model saw it


class _Ema:
    """Motion-aware exponential smoothing, optionally motion-compensated (see the module
    docstring: ``ema`` and ``flow``)."""

    def __init__(self, flow: bool = False) -> None:
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST) if flow \
            else None
        self.reset()

    def reset(self) -> None:
        self.alpha = self.grey = self.grey8 = None

    def __call__(self, item: _Item) -> list[_Item]:
        grey8 = (np.clip(item.grey * 255.0 + 0.5, 0, 255).astype(np.uint8)
                 if self.flow is not None else None)  # DIS works on 8-bit images
        if self.alpha is None or self.alpha.shape != item.alpha.shape:
            self.alpha, self.grey, self.grey8 = item.alpha, item.grey, grey8
            return [item]
        before_alpha, before_grey = self.alpha, self.grey
        if self.flow is not None:
            # where each pixel of the new frame was in the previous one
            f = self.flow.calc(grey8, self.grey8, None)
            h, w = item.grey.shape
            f[..., 0] += np.arange(w, dtype=np.float32)
            f[..., 1] += np.arange(h, dtype=np.float32)[:, None]
            before_alpha = cv2.remap(self.alpha, f[..., 0], f[..., 1], cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE)
            before_grey = cv2.remap(self.grey, f[..., 0], f[..., 1], cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
        motion = cv2.blur(np.abs(item.grey - before_grey), (5, 5))
        weight = np.clip(EMA_BASE + EMA_GAIN * motion, EMA_BASE, 1.0)
        self.alpha = weight * item.alpha + (1.0 - weight) * before_alpha
        self.grey, self.grey8 = item.grey, grey8
        item.alpha = self.alpha
        return [item]

    def flush(self) -> list[_Item]:
        return []


class _Ofd:
    """One-frame delay: hold frame t until t+1 arrives, then repair t's lone flips."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.before: np.ndarray | None = None  # alpha of the last frame let out
        self.held: _Item | None = None

    def __call__(self, item: _Item) -> list[_Item]:
        out = []
        held = self.held
        if held is not None:
            if self.before is not None and self.before.shape == item.alpha.shape:
                prev, cur, nxt = self.before, held.alpha, item.alpha
                flip = ((np.abs(prev - nxt) < OFD_TOLERANCE)
                        & (np.abs(cur - prev) > OFD_TOLERANCE)
                        & (np.abs(cur - nxt) > OFD_TOLERANCE))
                held.alpha = np.where(flip, (prev + nxt) * 0.5, cur).astype(np.float32)
            self.before = held.alpha
            out.append(held)
        self.held = item
        return out

    def flush(self) -> list[_Item]:
        out, self.held = ([self.held] if self.held is not None else []), None
        self.before = None
        return out


class Stream:
    """Temporal state of one video stream.

    Args:
        run: the model call, float32 [1, C, h, w] -> alpha [1, 1, h, w] (a backend's ``run``).
        card: the model's card.
        method: ``METHODS`` name or a ``+`` chain (see the module docstring).
        cut_threshold: mean absolute change of a grey thumbnail (0..1) above which a frame
            starts a new scene; None disables cut detection.
        upsample: ``bilinear`` or ``guided`` (``segme.postprocess``): how each filtered
            model-size alpha reaches its frame's size.
        channels: colour order of the pushed frames, ``rgb`` or ``bgr`` (OpenCV's).

    ``push(frame)`` returns the (frame, alpha) pairs that are ready, oldest first: with
    ``ofd`` that is the previous frame, else the frame itself (as pushed, in its own colour
    order). ``flush()`` returns what is still held at the end. Alphas are float32 [H, W] in
    [0, 1] at each frame's size.
    """

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], card, method: str = "none",
                 cut_threshold: float | None = CUT_THRESHOLD, upsample: str = "bilinear",
                 channels: str = "rgb") -> None:
        self.run, self.card = run, card
        self.guided = check_upsample(upsample) == "guided"
        self.channels = check_channels(channels)
        self.methods = parse_method(method, card)
        self.use_prior = "prior" in self.methods
        make = {"ema": _Ema, "flow": lambda: _Ema(flow=True), "ofd": _Ofd}
        self.filters = [make[m]() for m in self.methods if m in make]
        self.cut_threshold = cut_threshold
        self.cuts = 0  # scene cuts seen so far
        self._thumb: np.ndarray | None = None
        self._prior: np.ndarray | None = None
        self._size: tuple[int, int] | None = None

    def reset(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Start from a clean state; returns the pairs that were still held."""
        out = self._drain()
        self._prior = self._thumb = None
        for f in self.filters:
            f.reset()
        return out

    def push(self, frame: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Add the next uint8 [H, W, 3] frame (``channels`` order); returns the pairs now ready."""
        rgb = to_rgb(frame, self.channels)
        x, meta = prepare(rgb, self.card)  # the prior plane, if any, is zeros for now
        grey = _grey(x, self.card)
        thumb = thumbnail(grey)  # from the model-size image: no second pass over the frame
        out = []
        new_scene = self._size is not None and frame.shape[:2] != self._size
        if (self._thumb is not None and self.cut_threshold is not None
                and float(np.abs(thumb - self._thumb).mean()) > self.cut_threshold):
            new_scene = True
        if new_scene:
            self.cuts += 1
            out += self.reset()
        self._thumb, self._size = thumb, frame.shape[:2]
        if self.use_prior and self._prior is not None:
            x[0, 3] = self._prior
        alpha = np.asarray(self.run(x), np.float32).reshape(x.shape[-2:])
        if self.use_prior:
            self._prior = alpha
        items = [_Item(frame, rgb, meta, alpha, grey)]
        for f in self.filters:
            items = [o for i in items for o in f(i)]
        return out + [self._restore(i) for i in items]

    def flush(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The pairs still held (``ofd`` holds one frame), e.g. at the end of a video."""
        return self._drain()

    def _drain(self) -> list[tuple[np.ndarray, np.ndarray]]:
        items: list[_Item] = []
        for f in self.filters:
            items = [o for i in items for o in f(i)] + f.flush()
        return [self._restore(i) for i in items]

    def _restore(self, item: _Item) -> tuple[np.ndarray, np.ndarray]:
        return item.frame, restore(item.alpha, item.meta, item.rgb if self.guided else None)


def _grey(x: np.ndarray, card) -> np.ndarray:
    """The grey image in [0, 1] that the model saw, from its normalised input planes."""
    rgb = x[0, :3] * np.float32(card.std)[:, None, None] + np.float32(card.mean)[:, None, None]
    if card.color_order == "bgr":
        rgb = rgb[::-1]
    return (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]).astype(np.float32)


def stream_pairs(stream: Stream, frames: Iterable[np.ndarray]
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every (frame, alpha) pair of ``frames`` through ``stream``, in order, flushed at the end."""
    for frame in frames:
        yield from stream.push(frame)
    yield from stream.flush()
