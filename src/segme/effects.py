"""Effects on an image and its person alpha: cut-out, background replacement, blur, edges.

numpy + OpenCV + Pillow only. Images are uint8 [H, W, 3] RGB; alphas float32 [H, W] in
[0, 1] of the same size (what ``Segmenter`` returns).

``render(verb, image, alpha, ...)`` is the one effect step of the CLI verbs, their live
camera views and the HTTP server; the web page mirrors it (web/src/effects.js) with the
constants the server hands it (``BLUR_*`` here, ``segme.postprocess``'s), and
tests/test_browser.py holds the two together.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
from PIL import ImageColor

from segme.io.images import read_image

VERBS = ("mask", "cutout", "replace", "blur")
DEFAULT_STRENGTH = 15.0  # blur radius in tenths of a percent of the short side
DEFAULT_BACKGROUND = "#00b140"  # a green screen: replace's colour when none is given
BLUR_MIN_SIGMA = 0.5  # pixels: below this a Gaussian is no blur at all
BLUR_SHRUNK_SIGMA = 2.0  # the blur runs on the image shrunk until its sigma is about this
BLUR_MIN_WEIGHT = 1e-3  # less background than this within reach: the plain blur instead


def render(verb: str, image: np.ndarray | None, alpha: np.ndarray, *, background=None,
           fit: str = "fill", strength: float = DEFAULT_STRENGTH, edge: float = 0.0,
           harmonize: float = 0.0) -> np.ndarray:
    """What a verb draws from an image and its person alpha.

    Args:
        verb: ``mask`` (uint8 [H, W]), ``cutout`` (uint8 [H, W, 4] RGBA), ``replace`` or
            ``blur`` (uint8 [H, W, 3] RGB).
        image: uint8 [H, W, 3] RGB; None for ``mask``, which needs the alpha only.
        alpha: float32 [H, W] in [0, 1], or a uint8 [H, W] mask (0..255), which ``mask``
            and ``cutout`` use as it is (a quarter of the float's memory at full size).
        background: ``replace``: a colour (name, #hex, r,g,b, tuple), a uint8 RGB image
            of any size (``fit``), or a photo's path (a ``Path``, or a string naming an
            existing file; ``ImageError`` when it cannot be read); None:
            ``DEFAULT_BACKGROUND``.
        fit: ``fill`` (crop) or ``fit`` (pad) for a background image.
        strength: ``blur``: radius in tenths of a percent of the short side.
        edge: smooth-step edge tightening, 0 (off) to 0.45 (``smoothstep(edge, 1 - edge)``).
        harmonize: ``replace``: colour transfer of the person towards a background image,
            0..1 (a plain colour leaves the person alone).
    """
    if verb not in VERBS:
        raise ValueError(f"verb must be one of {', '.join(VERBS)}, got {verb!r}")
    if edge:
        alpha = smoothstep(_float(alpha), edge, 1.0 - edge)
    if verb == "mask":
        return mask8(alpha)
    if verb == "cutout":
        return cutout(image, alpha)
    if verb == "blur":
        return blur_background(image, _float(alpha), strength)
    alpha = _float(alpha)
    background = DEFAULT_BACKGROUND if background is None else background
    if isinstance(background, os.PathLike) or (isinstance(background, str)
                                                and os.path.isfile(background)):
        background = read_image(background)
    if harmonize and isinstance(background, np.ndarray):
        image = color_transfer(image, alpha, background, harmonize)
    return replace_background(image, alpha, background, fit)


def _float(alpha: np.ndarray) -> np.ndarray:
    """A uint8 mask as a float alpha in [0, 1]; a float alpha as it is."""
    return alpha.astype(np.float32) / np.float32(255) if alpha.dtype == np.uint8 else alpha


def _check(image: np.ndarray, alpha: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 RGB image [H, W, 3], got {image.dtype} {image.shape}")
    if alpha.shape != image.shape[:2]:
        raise ValueError(f"alpha {alpha.shape} and image {image.shape[:2]} differ in size")


def _blend(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """fg * a + bg * (1 - a), rounded to uint8 (OpenCV: ~7x faster than NumPy at 720p)."""
    a = np.ascontiguousarray(alpha, np.float32)
    return cv2.blendLinear(np.ascontiguousarray(fg), np.ascontiguousarray(bg), a, 1.0 - a)


def smoothstep(alpha: np.ndarray, low: float = 0.3, high: float = 0.7) -> np.ndarray:
    """Soften or tighten edges: 0 below ``low``, 1 above ``high``, a smooth S-curve between."""
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"need 0 <= low < high <= 1, got low={low}, high={high}")
    t = np.clip((alpha.astype(np.float32) - low) / (high - low), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def mask8(alpha: np.ndarray) -> np.ndarray:
    """Alpha float [H, W] in [0, 1] -> uint8 [H, W] 0..255, rounded (a mask image); a uint8
    mask is returned as it is."""
    if alpha.dtype == np.uint8:
        return alpha
    return np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)


def cutout(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The person on a transparent background: uint8 [H, W, 4] RGBA."""
    _check(image, alpha)
    return np.dstack([image, mask8(alpha)])


def parse_color(color: str | tuple[int, int, int]) -> tuple[int, int, int]:
    """``"#00b140"``, ``"green"``, ``"0,177,64"`` or a tuple -> (r, g, b)."""
    if isinstance(color, tuple):
        rgb = color
    elif "," in color:
        try:
            rgb = tuple(int(v) for v in color.split(","))
        except ValueError:
            rgb = ()
    else:
        try:
            rgb = ImageColor.getrgb(color)[:3]
        except ValueError:
            rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise ValueError(f"not a colour: {color!r}; use a name, #rrggbb or r,g,b")
    return tuple(int(v) for v in rgb)


def fit_background(background: np.ndarray, size: tuple[int, int], mode: str = "fill") -> np.ndarray:
    """Resize a background photo to ``size`` (height, width).

    ``fill`` scales to cover the frame and crops the centre; ``fit`` scales to fit inside
    and pads with the photo's own blurred, stretched copy (no black bars). A background of
    that size already is returned as it is (not copied).
    """
    h, w = size
    bh, bw = background.shape[:2]
    if mode not in ("fill", "fit"):
        raise ValueError(f"mode must be 'fill' or 'fit', got {mode!r}")
    if (bh, bw) == (h, w):
        return background
    cover = max(h / bh, w / bw)
    if mode == "fill":
        nh, nw = max(h, round(bh * cover)), max(w, round(bw * cover))
        interp = cv2.INTER_AREA if cover < 1 else cv2.INTER_LINEAR
        big = cv2.resize(background, (nw, nh), interpolation=interp)
        y0, x0 = (nh - h) // 2, (nw - w) // 2
        return np.ascontiguousarray(big[y0 : y0 + h, x0 : x0 + w])
    inside = min(h / bh, w / bw)
    nh, nw = max(1, round(bh * inside)), max(1, round(bw * inside))
    canvas = cv2.GaussianBlur(cv2.resize(background, (w, h)), (0, 0), max(h, w) / 30)
    y0, x0 = (h - nh) // 2, (w - nw) // 2
    interp = cv2.INTER_AREA if inside < 1 else cv2.INTER_LINEAR
    canvas[y0 : y0 + nh, x0 : x0 + nw] = cv2.resize(background, (nw, nh), interpolation=interp)
    return canvas


def replace_background(
    image: np.ndarray, alpha: np.ndarray, background, mode: str = "fill"
) -> np.ndarray:
    """Composite the person over a colour (name, #hex, r,g,b, tuple) or an RGB image."""
    _check(image, alpha)
    if isinstance(background, np.ndarray):
        if background.ndim != 3 or background.shape[2] != 3 or background.dtype != np.uint8:
            raise ValueError("a background image must be uint8 RGB [H, W, 3]")
        bg = fit_background(background, image.shape[:2], mode)
    else:
        bg = solid(image.shape[:2], parse_color(background))
    return _blend(image, bg, alpha)


def solid(size: tuple[int, int], rgb: tuple[int, int, int]) -> np.ndarray:
    """A uint8 [h, w, 3] image of one colour. (One row is filled and copied down: NumPy's
    per-pixel broadcast of a 3-value colour costs 8 ms at 720p, this 0.1 ms.)"""
    h, w = size
    out = np.empty((h, w, 3), np.uint8)
    if h:
        out[0] = rgb
        out[1:] = out[0]
    return out


def blur_background(image: np.ndarray, alpha: np.ndarray,
                    strength: float = DEFAULT_STRENGTH) -> np.ndarray:
    """Background blurred like a shallow depth of field, the person kept sharp.

    The blur is normalised by the background weight (blur(img * (1 - a)) / blur(1 - a)), so
    the person's colours do not bleed into the blurred background as a halo.

    Args:
        strength: blur radius as a percentage of the image's short side / 10 (15 = 1.5%).
    """
    _check(image, alpha)
    if strength <= 0:
        return image.copy()
    sigma = max(BLUR_MIN_SIGMA, strength / 1000.0 * min(image.shape[:2]))
    h, w = image.shape[:2]
    # a wide blur loses nothing when computed at reduced resolution: shrink so the blur is
    # ~2 px there, blur, and scale back (20-50x faster on a 720p frame than at full size).
    # An integer factor takes OpenCV's fast box-filter path of INTER_AREA (3-4x faster
    # than a fractional one: 4.8 -> 1.8 ms for a 720p frame, 2.1 -> 0.5 for its alpha).
    k = min(max(1, int(sigma / BLUR_SHRUNK_SIGMA)), h, w)
    small = cv2.resize(image, None, fx=1.0 / k, fy=1.0 / k,
                       interpolation=cv2.INTER_AREA).astype(np.float32)
    wt = cv2.resize(1.0 - alpha.astype(np.float32), None, fx=1.0 / k, fy=1.0 / k,
                    interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    s_sigma = sigma * sw / w
    num = cv2.GaussianBlur(small * wt[:, :, None], (0, 0), s_sigma)
    den = cv2.GaussianBlur(wt, (0, 0), s_sigma)[:, :, None]
    fallback = cv2.GaussianBlur(small, (0, 0), s_sigma)
    blurred = np.where(den > BLUR_MIN_WEIGHT, num / np.maximum(den, BLUR_MIN_WEIGHT), fallback)
    blurred = cv2.resize(np.clip(blurred, 0, 255).astype(np.uint8), (w, h),
                         interpolation=cv2.INTER_LINEAR)
    return _blend(image, blurred, alpha)


def color_transfer(
    image: np.ndarray, alpha: np.ndarray, background: np.ndarray, strength: float = 0.5
) -> np.ndarray:
    """Move the person's colour statistics towards the new background's (Reinhard et al.
    2001, in Lab), by ``strength`` in [0, 1]; returns the adjusted image (person region)."""
    _check(image, alpha)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if strength == 0:
        return image.copy()  # skip the lossy 8-bit Lab round trip
    bg = fit_background(background, image.shape[:2])
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    bg_lab = cv2.cvtColor(bg, cv2.COLOR_RGB2LAB).astype(np.float32)
    w = alpha.astype(np.float32)[:, :, None]
    n = max(float(w.sum()), 1.0)
    mu = (lab * w).sum((0, 1)) / n
    sd = np.sqrt(((lab - mu) ** 2 * w).sum((0, 1)) / n) + 1e-3
    mu_bg, sd_bg = bg_lab.reshape(-1, 3).mean(0), bg_lab.reshape(-1, 3).std(0) + 1e-3
    moved = (lab - mu) * (sd_bg / sd) + mu_bg
    out = lab + strength * (moved - lab)
    rgb = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    return _blend(rgb, image, alpha)


def seamless_clone(image: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Poisson blending of the person into the background (OpenCV's seamlessClone)."""
    _check(image, alpha)
    bg = fit_background(background, image.shape[:2])
    mask = (alpha >= 0.5).astype(np.uint8) * 255
    if not mask.any():
        return bg
    # seamlessClone needs the mask's box strictly inside the destination: pad everything
    pad = 2
    src = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    dst = cv2.copyMakeBorder(bg, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    m = cv2.copyMakeBorder(mask, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    x, y, w, h = cv2.boundingRect(m)
    center = (x + w // 2, y + h // 2)
    out = cv2.seamlessClone(src, dst, m, center, cv2.NORMAL_CLONE)
    return out[pad:-pad, pad:-pad]
