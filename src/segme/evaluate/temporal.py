"""Temporal metrics for sequences of person alphas (numpy + OpenCV only).

Feed each clip's frames in order to :class:`TemporalAccumulator` with ``add(alpha, frame,
truth)``, call ``end_clip()`` between clips, and read the totals with ``results()``.
Alphas and truths are ``[H, W]`` in [0, 1] (``uint8`` 0..255 is divided by 255); frames
are the uint8 RGB images the alphas belong to. Notation: ``a_t`` is the predicted alpha of
frame t, ``g_t`` the true one, ``n`` the number of pixels of a frame, and a "transition"
is a pair of consecutive frames (t-1, t) of the same clip; a clip of F frames has F - 1.

- ``fg_iou``: foreground IoU of ``a_t >= 0.5`` against ``g_t >= 0.5``, set-level as in
  :mod:`segme.evaluate.metrics` (one confusion matrix summed over every frame of every
  clip with truth, then TP / (TP + FP + FN)), in percent.
- ``dtssd``: the temporal matting error of Erofeev et al. (2015), in the form of
  RobustVideoMatting's evaluation code, scaled by 100: per transition

      dtSSD_t = 100 * sqrt( sum_i ((a_t(i) - a_{t-1}(i)) - (g_t(i) - g_{t-1}(i)))^2 / n )

  (the RMS over pixels of the difference between the predicted and the true change), then
  the mean over all transitions of all clips with truth. Unlike RobustVideoMatting, the
  first frame of a clip adds no zero to the mean (it has no transition). 0 means the alpha
  changes exactly as the truth does; a prediction that stays frozen while a full-height
  vertical edge of a 48 x 64 (H x W) binary truth moves 1 px per frame scores
  100 * sqrt(48 / 3072) = 12.5.
- ``instability``: flicker where nothing moved, for clips without truth, in percent of
  alpha. For each transition, with d = round(0.02 * sqrt(H^2 + W^2)) (at least 1 px, the
  band width of ``boundary_iou``):

  * the band B_t: pixels within chessboard distance d of an edge of ``a_{t-1} >= 0.5``
    or of ``a_t >= 0.5`` (an edge pixel has both values in its 3x3 neighbourhood; the
    image border is not an edge), i.e. the band of ``boundary_iou`` between the two frames;
  * the still pixels S_t: ``|y_t - y_{t-1}| < 4/255``, where y is the frame's grey level
    (0.299 R + 0.587 G + 0.114 B, in [0, 1]) blurred by a 5x5 Gaussian with sigma 1
    (replicated border), which keeps sensor and compression noise from counting as motion;
  * M_t = B_t ∩ S_t, and

      instability = 100 * sum_t sum_{i in M_t} |a_t(i) - a_{t-1}(i)| / sum_t |M_t|

  over all transitions of all clips (a pixel-weighted mean, so transitions with few still
  band pixels weigh little). None when no transition had such a pixel. The band spans
  both frames so that flicker A -> B and B -> A count the same, and an alpha that
  vanishes for one frame is still seen.
- ``frames``: frames added, with or without truth.
"""

from __future__ import annotations

import cv2
import numpy as np

from segme.evaluate.metrics import _as_alpha, _boundary_width, _edge_band, _Totals

STILL_CHANGE = 4.0 / 255.0  # grey change (blurred) below which a pixel did not move
_STILL_BLUR = ((5, 5), 1.0)  # Gaussian kernel and sigma applied to grey before comparing


class TemporalAccumulator:
    """Accumulates temporal metrics over a set of clips (definitions: module docstring).

    Example:
        >>> acc = TemporalAccumulator()
        >>> for clip in clips:  # doctest: +SKIP
        ...     for alpha, frame, truth in clip:
        ...         acc.add(alpha, frame, truth)
        ...     acc.end_clip()
        >>> acc.results()  # doctest: +SKIP
        {'fg_iou': 93.1, 'dtssd': 2.4, 'instability': 0.8, 'frames': 480}

    Args:
        threshold: alpha at or above which a pixel counts as person (IoU and the band).
        boundary_ratio: band width as a fraction of the image diagonal.
        still_change: blurred grey change (0..1) below which a pixel counts as still.
    """

    def __init__(self, threshold: float = 0.5, boundary_ratio: float = 0.02,
                 still_change: float = STILL_CHANGE) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if boundary_ratio <= 0.0:
            raise ValueError(f"boundary_ratio must be positive, got {boundary_ratio}")
        if still_change <= 0.0:
            raise ValueError(f"still_change must be positive, got {still_change}")
        self.threshold = float(threshold)
        self.boundary_ratio = float(boundary_ratio)
        self.still_change = float(still_change)
        self._confusion = _Totals()  # tp / fp / fn / tn of every frame with truth
        self._dtssd_sum = 0.0
        self._dtssd_count = 0
        self._flicker_sum = 0.0  # sum of |a_t - a_{t-1}| over M_t
        self._flicker_pixels = 0  # sum of |M_t|
        self._frames = 0
        self.end_clip()

    def end_clip(self) -> None:
        """Finish the current clip: the next ``add`` starts a new one (no transition)."""
        self._prev: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None

    def add(self, alpha: np.ndarray, frame: np.ndarray, truth: np.ndarray | None = None
            ) -> dict[str, float | None]:
        """Add the next frame of the current clip.

        Args:
            alpha: predicted alpha, float [H, W] in [0, 1] (or uint8 0..255, or bool).
            frame: the image, uint8 [H, W, 3] RGB (or uint8 [H, W] grey), same size.
            truth: true alpha like ``alpha``, or None for a clip without masks. Give it for
                every frame of a clip or for none.

        Returns:
            This frame's values: ``fg_iou`` (with truth) and, from the second frame of a
            clip on, ``dtssd`` (with truth) and ``instability`` (None when the transition
            has no still band pixel), in the units of ``results()``.

        Raises:
            ValueError: a bad shape, dtype or range, sizes that differ, or truth given for
                some frames of a clip and not others.
        """
        a = _as_alpha(alpha, "alpha")
        g = None if truth is None else _as_alpha(truth, "truth")
        if g is not None and g.shape != a.shape:
            raise ValueError(f"alpha has size {a.shape} but truth has size {g.shape} (H, W); "
                             "resize the prediction to the truth's size first")
        y = self._grey(frame, a.shape)
        out: dict[str, float | None] = {}
        am = a >= self.threshold
        if g is not None:
            gm = g >= self.threshold
            tp = int(np.count_nonzero(am & gm))
            fp = int(np.count_nonzero(am)) - tp
            fn = int(np.count_nonzero(gm)) - tp
            frame_counts = _Totals(tp=tp, fp=fp, fn=fn, tn=a.size - tp - fp - fn, images=1)
            self._confusion.add(frame_counts)
            out["fg_iou"] = frame_counts.summary()["fg_iou"]

        if self._prev is not None:
            pa, py, pg = self._prev
            if pa.shape != a.shape:
                raise ValueError(f"frame size changed from {pa.shape} to {a.shape} inside a "
                                 "clip (H, W); call end_clip() between clips")
            if (pg is None) != (g is None):
                raise ValueError("truth was given for some frames of this clip and not for "
                                 "others; give it for every frame of a clip or for none")
            if g is not None:
                # Predicted change minus true change, RMS over the pixels.
                err = cv2.norm(a - pa, g - pg, cv2.NORM_L2SQR) / a.size
                out["dtssd"] = 100.0 * float(np.sqrt(err))
                self._dtssd_sum += out["dtssd"]
                self._dtssd_count += 1
            d = _boundary_width(a.shape, self.boundary_ratio)
            band = _edge_band(pa >= self.threshold, am, d)
            still = cv2.absdiff(y, py) < self.still_change
            measured = band & still
            pixels = int(np.count_nonzero(measured))
            flicker = float(np.abs(a - pa)[measured].sum(dtype=np.float64))
            self._flicker_sum += flicker
            self._flicker_pixels += pixels
            out["instability"] = 100.0 * flicker / pixels if pixels else None
        self._prev = (a, y, g)
        self._frames += 1
        return out

    def results(self) -> dict[str, float | int | None]:
        """The metrics over everything added so far.

        Returns:
            ``instability`` (percent; None when no transition had a still band pixel) and
            ``frames`` always; ``fg_iou`` (percent) and ``dtssd`` (x100) when some clip had
            truth (``dtssd`` None when no such clip had two frames).

        Raises:
            ValueError: if no frame was added yet.
        """
        if not self._frames:
            raise ValueError("no frames were evaluated yet; call add() first")
        out: dict[str, float | int | None] = {}
        if self._confusion.images:
            out["fg_iou"] = self._confusion.summary()["fg_iou"]
            out["dtssd"] = (self._dtssd_sum / self._dtssd_count) if self._dtssd_count else None
        out["instability"] = (100.0 * self._flicker_sum / self._flicker_pixels
                              if self._flicker_pixels else None)
        out["frames"] = self._frames
        return out

    @staticmethod
    def _grey(frame: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Blurred grey level of a frame, float32 [H, W] in [0, 1]."""
        f = np.asarray(frame)
        if f.dtype != np.uint8 or not (f.ndim == 2 or (f.ndim == 3 and f.shape[2] == 3)):
            raise ValueError(f"frame must be uint8 [H, W, 3] RGB or [H, W] grey, got {f.dtype} "
                             f"{f.shape}")
        if f.shape[:2] != shape:
            raise ValueError(f"frame has size {f.shape[:2]} but alpha has size {shape} (H, W); "
                             "pass the frame the alpha was computed from")
        y = f.astype(np.float32) * np.float32(1.0 / 255.0)
        if y.ndim == 3:
            y = cv2.cvtColor(y, cv2.COLOR_RGB2GRAY)  # float in, float out: no rounding
        ksize, sigma = _STILL_BLUR
        return cv2.GaussianBlur(y, ksize, sigma, borderType=cv2.BORDER_REPLICATE)
