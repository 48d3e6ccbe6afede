"""Synthetic camera motion: one photo with its mask -> a short video with known masks.

numpy + OpenCV only. A virtual camera looks at the photo and moves smoothly over it (pan,
zoom, a small roll), now and then with a short burst of fast shake (a few frames of large,
random displacement, as when a phone is bumped), and once per clip holds still for a few
frames (the camera on a table: the image does not change, so any change of the mask there
is flicker). The same affine warp maps the photo (bilinear, reflected border) and the mask
(bilinear, reflected border, values kept in [0, 1]) into every frame, so the masks are
exactly as true as the photo's own.

The path depends on the seed and the clip's options only, never on the photo; at a
nominal 30 frames per second:

- pan: the centre of the view moves inside the margin that the zoom leaves, so the view
  stays inside the photo (only the corners of a rolled view may reach past the border,
  where the photo is mirrored);
- zoom: between ``ZOOM[0]`` and ``ZOOM[1]`` times the largest view of the output's aspect
  that fits in the photo;
- roll: within +-``MAX_ROLL`` degrees.

Each of pan x, pan y, zoom and roll is a sum of three sinusoids with random periods in
``PERIODS`` frames, random phases and random weights that sum to 1, so it lies in [-1, 1]
and moves at most 2 pi / ``PERIODS[0]`` of its range per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

ZOOM = (1.08, 1.4)  # zoom range: 1 = the largest view of the output's aspect inside the photo
MAX_ROLL = 3.0  # degrees
PERIODS = (40.0, 160.0)  # frames per cycle of the smooth path's sinusoids (30 fps: 1.3 s .. 5 s)
SHAKE_FRAMES = (2, 4)  # length of a shake burst, frames (inclusive range)
SHAKE_SHIFT = (0.05, 0.1)  # shake displacement, fraction of the view's width/height
SHAKE_ROLL = 2.0  # extra roll during a shake, degrees (+-)
_SINES = 3  # sinusoids per path parameter


@dataclass
class CameraPath:
    """The virtual camera of one clip; arrays hold one value per frame.

    Attributes:
        pan_x, pan_y: float64 [F] in [-1, 1]: the view's centre as a fraction of the
            margin the zoom leaves on each side (0 = centred, +-1 = touching the border).
        zoom: float64 [F] in ``ZOOM``.
        roll: float64 [F] degrees, counter-clockwise, within +-(``MAX_ROLL`` + ``SHAKE_ROLL``).
        shake_x, shake_y: float64 [F]: extra displacement of the view in fractions of its
            width and height; zero outside a shake burst.
        shake: bool [F]: the frame is part of a shake burst.
        static: bool [F]: the frame belongs to the still segment (all of them are equal).
    """

    pan_x: np.ndarray
    pan_y: np.ndarray
    zoom: np.ndarray
    roll: np.ndarray
    shake_x: np.ndarray
    shake_y: np.ndarray
    shake: np.ndarray
    static: np.ndarray

    def __len__(self) -> int:
        return len(self.zoom)

    def matrix(self, t: int, src_size: tuple[int, int], out_size: tuple[int, int]) -> np.ndarray:
        """The affine map of frame ``t`` from photo pixels to output pixels.

        Args:
            t: frame index.
            src_size: photo size (width, height).
            out_size: frame size (width, height).

        Returns:
            float64 [2, 3] for ``cv2.warpAffine`` (forward: photo -> frame).
        """
        (sw, sh), (ow, oh) = src_size, out_size
        # Largest view of the output's aspect that fits in the photo at zoom 1.
        scale = max(ow / sw, oh / sh) * float(self.zoom[t])
        view_w, view_h = ow / scale, oh / scale  # the view in photo pixels
        cx = (sw - 1) / 2.0 + float(self.pan_x[t]) * max(0.0, (sw - view_w) / 2.0)
        cy = (sh - 1) / 2.0 + float(self.pan_y[t]) * max(0.0, (sh - view_h) / 2.0)
        cx += float(self.shake_x[t]) * view_w
        cy += float(self.shake_y[t]) * view_h
        m = cv2.getRotationMatrix2D((cx, cy), float(self.roll[t]), scale)
        # getRotationMatrix2D keeps (cx, cy) in place; move it to the output's centre.
        m[:, 2] += ((ow - 1) / 2.0 - cx, (oh - 1) / 2.0 - cy)
        return m


def _waves(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Periods (frames), phases and weights (summing to 1) of one path parameter's sinusoids."""
    periods = rng.uniform(*PERIODS, size=_SINES)
    phases = rng.uniform(0.0, 2.0 * np.pi, size=_SINES)
    weights = rng.dirichlet(np.ones(_SINES))
    return periods, phases, weights


def _smooth(waves: tuple[np.ndarray, np.ndarray, np.ndarray], tau: np.ndarray) -> np.ndarray:
    """The sum of the sinusoids at camera times ``tau``: float64 [F] in [-1, 1]."""
    periods, phases, weights = waves
    return np.sin(2.0 * np.pi * tau[:, None] / periods[None, :] + phases[None, :]) @ weights


def camera_path(frames: int = 48, seed: int = 0, static: int | None = None,
                shake_prob: float = 0.5) -> CameraPath:
    """Draw the virtual camera's path for one clip.

    Args:
        frames: clip length, at least 1.
        seed: the same seed (and arguments) gives the same path.
        static: length of the still segment, frames (0: none; at most ``frames``; None: a
            sixth of the clip, 8 of 48 frames); it starts at a seeded frame, and the camera
            goes on from there afterwards without a jump.
        shake_prob: chance of one shake burst of ``SHAKE_FRAMES`` frames, placed outside the
            still segment (skipped when the clip has no room for it).

    Returns:
        The path (see :class:`CameraPath`).

    Raises:
        ValueError: ``frames`` < 1, ``static`` outside [0, frames] or ``shake_prob``
            outside [0, 1].
    """
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    if static is None:
        static = frames // 6
    if not 0 <= static <= frames:
        raise ValueError(f"static must be between 0 and frames ({frames}), got {static}")
    if not 0.0 <= shake_prob <= 1.0:
        raise ValueError(f"shake_prob must be in [0, 1], got {shake_prob}")
    rng = np.random.default_rng(seed)
    # Fixed-size draws first; the draws whose size depends on the options come last.
    waves = [_waves(rng) for _ in range(4)]  # pan x, pan y, zoom, roll
    wants_shake = rng.random() < shake_prob
    length = int(rng.integers(SHAKE_FRAMES[0], SHAKE_FRAMES[1] + 1))
    sizes = rng.uniform(*SHAKE_SHIFT, size=length)
    angles = rng.uniform(0.0, 2.0 * np.pi, size=length)
    rolls = rng.uniform(-SHAKE_ROLL, SHAKE_ROLL, size=length)
    start = int(rng.integers(0, frames - static + 1))

    t = np.arange(frames, dtype=np.float64)
    # Camera time stops during the still segment and then goes on from where it stopped.
    tau = np.where(t < start, t, np.maximum(float(start), t - max(static - 1, 0)))
    pan_x, pan_y, zoom_w, roll_w = (_smooth(w, tau) for w in waves)
    zoom = ZOOM[0] + (ZOOM[1] - ZOOM[0]) * (zoom_w + 1.0) / 2.0
    roll = MAX_ROLL * roll_w

    still = np.zeros(frames, bool)
    still[start:start + static] = True
    shake = np.zeros(frames, bool)
    shake_x, shake_y = np.zeros(frames), np.zeros(frames)
    # A burst starts after frame 0 (a shake needs a steady frame before it) and never
    # overlaps the still segment.
    starts = [s for s in range(1, frames - length + 1) if not still[s:s + length].any()]
    if wants_shake and starts:
        s = starts[int(rng.integers(0, len(starts)))]
        shake[s:s + length] = True
        shake_x[s:s + length] = sizes * np.cos(angles)
        shake_y[s:s + length] = sizes * np.sin(angles)
        roll[s:s + length] += rolls
    return CameraPath(pan_x, pan_y, zoom, roll, shake_x, shake_y, shake, still)


def motion_clip(
    image: np.ndarray,
    mask: np.ndarray,
    frames: int = 48,
    seed: int = 0,
    size: tuple[int, int] | None = None,
    static: int | None = None,
    shake_prob: float = 0.5,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Film a photo with a moving virtual camera (see the module docstring).

    Args:
        image: uint8 [H, W, 3] RGB photo.
        mask: its person alpha, float [H, W] in [0, 1] (uint8 0..255 is divided by 255).
        frames: clip length.
        seed: the camera path's seed (:func:`camera_path`); same seed, same clip.
        size: frame size (width, height); None: the photo's size.
        static: frames of the still segment (identical frames); 0 for none; None: a sixth
            of the clip.
        shake_prob: chance of a burst of fast shake.

    Returns:
        ``(frames, masks)``: ``frames`` uint8 [h, w, 3] RGB and ``masks`` float32 [h, w] in
        [0, 1], one of each per frame, both warped by the same affine map.

    Raises:
        ValueError: wrong shapes or dtypes, mask values outside [0, 1], a non-positive
            ``size``, or a bad path option (:func:`camera_path`).
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 [H, W, 3] RGB, got {image.dtype} {image.shape}")
    alpha = np.asarray(mask)
    if alpha.shape != image.shape[:2]:
        raise ValueError(f"mask has shape {alpha.shape} but the image is {image.shape[:2]} "
                         "(H, W); pass the photo's own mask")
    if alpha.dtype == np.uint8:
        alpha = alpha.astype(np.float32) / np.float32(255.0)
    alpha = np.ascontiguousarray(alpha, dtype=np.float32)
    if not (alpha.min() >= 0.0 and alpha.max() <= 1.0):  # also catches NaN
        raise ValueError(f"mask values must lie in [0, 1], got [{alpha.min()}, {alpha.max()}]")
    src = (image.shape[1], image.shape[0])
    out = src if size is None else (int(size[0]), int(size[1]))
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"size must be a positive (width, height), got {size}")
    path = camera_path(frames, seed, static, shake_prob)
    clip, masks = [], []
    for t in range(frames):
        m = path.matrix(t, src, out)
        clip.append(cv2.warpAffine(image, m, out, flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT_101))
        warped = cv2.warpAffine(alpha, m, out, flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT_101)
        masks.append(np.clip(warped, 0.0, 1.0, out=warped))  # rounding may leave 1 + 1e-7
    return clip, masks
