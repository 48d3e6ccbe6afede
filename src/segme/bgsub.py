"""The seed project's baseline: static background subtraction, no model (numpy + OpenCV).

The empty scene is learnt first (the mean grey level of the first ``LEARN_FRAMES`` frames,
taken while nobody is in view, or one captured empty frame), then every frame is:
grey, 5x5 Gaussian blur, absolute difference to the empty scene, threshold at
``THRESHOLD`` grey levels, a morphological closing with an ellipse, the largest blob kept
(its outer contour filled, which fills its holes too) and feathered by a Gaussian blur into
an alpha. The seed's kernels (closing 53 px, feathering 25 px) were sized for a 640x480
webcam; here they scale with the frame's short side.

It needs a camera that does not move and a person who was not in view while the scene was
learnt; docs/video.md measures what happens otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

NAME = "bgsub"  # how users ask for it: ``--model bgsub`` (cameras), an eval-video method
LEARN_FRAMES = 100  # frames averaged into the empty scene (the seed's)
THRESHOLD = 25  # grey-level difference (0..255) above which a pixel is foreground
CLOSE = 53 / 480  # closing ellipse, as a fraction of the short side (53 px at 640x480)
FEATHER = 25 / 480  # Gaussian feathering of the mask, fraction of the short side
_BLUR = (5, 5)


def _odd(fraction: float, shape: tuple[int, ...]) -> int:
    """An odd kernel side of ``fraction`` of the short side, at least 3."""
    return max(3, int(round(fraction * min(shape[:2]))) | 1)


def _grey(frame: np.ndarray) -> np.ndarray:
    """uint8 [H, W] grey of an RGB (or grey) frame, before blurring."""
    f = np.asarray(frame)
    if f.dtype != np.uint8 or not (f.ndim == 2 or (f.ndim == 3 and f.shape[2] == 3)):
        raise ValueError(f"expected a uint8 [H, W, 3] RGB frame, got {f.dtype} {f.shape}")
    return f if f.ndim == 2 else cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)


def mean_background(frames: Iterable[np.ndarray], count: int = LEARN_FRAMES) -> np.ndarray:
    """The empty scene as the seed learns it: the mean grey of the first ``count`` frames
    (uint8 [H, W], truncated as the seed does).

    Raises:
        ValueError: no frames, or frames of different sizes.
    """
    total, n = None, 0
    for frame in frames:
        g = _grey(frame)
        if total is None:
            total = np.zeros(g.shape, np.int64)
        elif g.shape != total.shape:
            raise ValueError(f"frame size changed from {total.shape} to {g.shape} while "
                             "learning the empty scene")
        total += g
        n += 1
        if n == count:
            break
    if total is None:
        raise ValueError("no frames to learn the empty scene from")
    return (total // n).astype(np.uint8)


class BackgroundSubtraction:
    """The baseline as a segmenter of one fixed camera view.

    Args:
        background: the empty scene: an RGB frame (uint8 [H, W, 3]) or a learnt grey mean
            (uint8 [H, W], :func:`mean_background`); None: learn it from the first
            ``learn`` frames pushed (``push`` returns an all-person alpha meanwhile, so the
            picture shows the camera as it is).
        learn: frames to learn from when ``background`` is None.

    ``bgsub(frame)`` returns the alpha of an RGB frame of the background's size, float32
    [H, W] in [0, 1]. ``push`` / ``flush`` / ``reset`` make it a drop-in for a model's
    ``segme.temporal.Stream`` in the camera path.
    """

    def __init__(self, background: np.ndarray | None = None, learn: int = LEARN_FRAMES
                 ) -> None:
        self.learn = learn
        self.background: np.ndarray | None = None
        self._seen: list[np.ndarray] = []  # grey frames of the empty scene, while learning
        if background is not None:
            self.background = cv2.GaussianBlur(_grey(background), _BLUR, 0)

    @property
    def learning(self) -> bool:
        """Still learning the empty scene."""
        return self.background is None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self.background is None:
            raise ValueError("learn the empty scene first: give a background or push frames")
        grey = cv2.GaussianBlur(_grey(frame), _BLUR, 0)
        if grey.shape != self.background.shape:
            raise ValueError(f"frame size {grey.shape} differs from the empty scene's "
                             f"{self.background.shape} (H, W)")
        moved = (cv2.absdiff(self.background, grey) > THRESHOLD).astype(np.uint8) * 255
        k = _odd(CLOSE, grey.shape)
        moved = cv2.morphologyEx(moved, cv2.MORPH_CLOSE,
                                 cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        contours, _ = cv2.findContours(moved, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        blob = np.zeros_like(moved)
        if contours:
            cv2.drawContours(blob, [max(contours, key=cv2.contourArea)], -1, 255, cv2.FILLED)
        k = _odd(FEATHER, grey.shape)
        return cv2.GaussianBlur(blob, (k, k), 0).astype(np.float32) * np.float32(1 / 255)

    def push(self, frame: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """The (frame, alpha) pair of the next frame; learns the empty scene first."""
        if self.background is None:
            self._seen.append(_grey(frame))
            if len(self._seen) >= self.learn:
                self.background = cv2.GaussianBlur(mean_background(self._seen), _BLUR, 0)
                self._seen = []
            return [(frame, np.ones(frame.shape[:2], np.float32))]
        return [(frame, self(frame))]

    def flush(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return []

    def reset(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Learn the empty scene again from the next frames."""
        self.background, self._seen = None, []
        return []
