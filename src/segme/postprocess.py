"""Model output -> alpha at the source image's size. numpy + OpenCV only (no torch).

Two ways back to the image's size (``UPSAMPLE``):

- ``bilinear``: the alpha resized on its own; the reference protocol of every evaluation
  (``segme eval``), so scores compare with published ones.
- ``guided``: edge-aware upsampling with the image as the guide, the fast guided filter of
  He & Sun (2015): a local linear model ``alpha = a * grey + b`` is fitted in small windows
  at the model's resolution, its smoothed ``a`` and ``b`` are resized to the image and
  applied to the full-resolution grey image. A model's blurry 224-pixel edge then follows
  the photo's own edges, only in the band where the model is unsure (+0.2 to 0.5 fg-IoU
  and +0.8 to 1.9 boundary IoU on ``portraits/val`` for every model tried, MediaPipe's
  included; ``benchmarks/upsample.py``, docs/lab/models-history.md), for about 3 ms at 800x600 and 8 ms
  at 1280x720 in one thread (2.6 and 5.9 ms more than bilinear).
"""

from __future__ import annotations

import cv2
import numpy as np

from segme.preprocess import Meta

UPSAMPLE = ("guided", "bilinear")
DEFAULT_UPSAMPLE = "guided"  # what Segmenter gives for images; evaluation keeps "bilinear"
# videos and cameras: guided costs about 6 ms a 720p frame, 12% of the real-time pipeline's
# frame rate on 2 cores (benchmarks/realtime.py, docs/video.md)
DEFAULT_VIDEO_UPSAMPLE = "bilinear"
GUIDED_EPS = 1e-3  # regularisation of the local linear model (grey levels in [0, 1])
BAND = (0.05, 0.95)  # the model's uncertain alpha range, where guided upsampling acts


def check_upsample(upsample: str) -> str:
    if upsample not in UPSAMPLE:
        raise ValueError(f"upsample must be {' or '.join(UPSAMPLE)}, got {upsample!r}")
    return upsample


def guided_radius(h: int, w: int) -> int:
    """Window radius at the model's resolution: 4-5 px at 192-256 (the best on val)."""
    return max(2, round(min(h, w) / 48))


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def guided_coefficients(guide: np.ndarray, p: np.ndarray, r: int, eps: float
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The guided filter's smoothed local linear model (He et al. 2010): ``a``, ``b`` with
    ``a * guide + b`` the filtered ``p``. ``guide`` and ``p`` float32 [h, w] of one size."""
    mean_i, mean_p = _box(guide, r), _box(p, r)
    var_i = _box(guide * guide, r) - mean_i * mean_i
    a = (_box(guide * p, r) - mean_i * mean_p) / (var_i + np.float32(eps))
    b = mean_p - a * mean_i
    return _box(a, r), _box(b, r)


def guided_upsample(alpha: np.ndarray, image: np.ndarray, radius: int | None = None,
                    eps: float = GUIDED_EPS, small: np.ndarray | None = None) -> np.ndarray:
    """Low-resolution alpha float32 [h, w] -> float32 [H, W] in [0, 1] following ``image``.

    The fast guided filter (He & Sun 2015): the linear model is fitted at the alpha's
    resolution against the image shrunk to it, then applied to the full-resolution grey
    image. It acts only where the model is unsure: away from its edge the fit's
    low-contrast tails would add a faint halo, so it is weighted by the model's uncertain
    band (``BAND``) grown by the window and feathered; elsewhere the result is the bilinear
    one. Everything but the last multiply-add runs at the alpha's resolution.

    Args:
        alpha: float32 [h, w], the model's output for the whole image.
        image: uint8 [H, W, 3] RGB, the image the alpha belongs to (any size).
        radius: window radius in alpha pixels; default ``guided_radius(h, w)``.
        eps: regularisation; smaller follows the image's edges more closely.
        small: the image already shrunk to the alpha's size, grey uint8 [h, w]
            (``Meta.grey``: shrinking a 720p frame again would cost more than the rest).
    """
    h, w = alpha.shape
    H, W = image.shape[:2]
    r = radius or guided_radius(h, w)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if small is None or small.shape != (h, w):
        small = cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA if H * W > h * w
                           else cv2.INTER_LINEAR)
    small = small.astype(np.float32) * np.float32(1 / 255)
    p = np.ascontiguousarray(alpha, np.float32)
    a, b = guided_coefficients(small, p, r, eps)
    band = ((p > BAND[0]) & (p < BAND[1])).astype(np.uint8)
    band = cv2.dilate(band, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    weight = _box(band.astype(np.float32), r)
    # out = weight * (a * grey + b) + (1 - weight) * p, as one linear model in grey whose
    # coefficients are resized (a takes the 1/255 of the uint8 grey it is applied to)
    a_full = cv2.resize(weight * a * np.float32(1 / 255), (W, H), interpolation=cv2.INTER_LINEAR)
    b_full = cv2.resize(weight * (b - p) + p, (W, H), interpolation=cv2.INTER_LINEAR)
    out = cv2.add(cv2.multiply(grey, a_full, dtype=cv2.CV_32F), b_full)
    return np.clip(out, 0.0, 1.0, out=out)


def restore(alpha: np.ndarray, meta: Meta, guide: np.ndarray | None = None) -> np.ndarray:
    """Model alpha [1, 1, h, w] or [h, w] -> float32 [H, W] in [0, 1] at the source size.

    ``guide``: the source image (uint8 [H, W, 3] RGB) for ``guided`` upsampling; None:
    ``bilinear``."""
    a = np.ascontiguousarray(np.asarray(alpha, np.float32).reshape(alpha.shape[-2:]))
    if guide is not None:
        if guide.shape[:2] != (meta.height, meta.width):
            raise ValueError(f"guide {guide.shape[:2]} and source {(meta.height, meta.width)} "
                             "differ in size")
        return guided_upsample(a, guide, small=meta.grey)
    a = cv2.resize(a, (meta.width, meta.height), interpolation=cv2.INTER_LINEAR)
    return np.clip(a, 0.0, 1.0)
