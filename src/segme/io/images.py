"""Reading images robustly (numpy + Pillow; no torch).

Every entry point reads photos through here, so all of them treat odd files alike: EXIF
orientation applied; grayscale, palette, 1-bit, CMYK, 16-bit and float images converted to
8-bit RGB; an alpha channel dropped (the colour planes of a photo with alpha are still the
photo); corrupt, truncated, empty and decompression-bomb files refused with one line.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
_SIXTEEN_BIT = ("I", "I;16", "I;16B", "I;16L", "I;16N")


class ImageError(ValueError):
    """An image that cannot be used; the message names the file and the reason."""


def open_image(path: str | Path) -> Image.Image:
    """Open, fully decode and EXIF-orient an image.

    Raises:
        ImageError: missing, empty, corrupt, truncated, or above PIL's decompression-bomb
            limit (twice ``Image.MAX_IMAGE_PIXELS``, about 179 megapixels).
    """
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"cannot read {path}: it is a folder, not an image")
    try:
        with warnings.catch_warnings():
            # Between MAX_IMAGE_PIXELS and twice that PIL only warns; above, it raises: the
            # limit stays PIL's own.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()  # decode now: a truncated file fails here, not later
                return ImageOps.exif_transpose(img)
    except FileNotFoundError:
        raise ImageError(f"cannot read {path}: file not found") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"cannot read {path}: {e}") from None
    except (OSError, ValueError, SyntaxError) as e:  # PIL raises all three on corrupt data
        raise ImageError(f"cannot read {path}: {e}") from None


def plane_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """Scale a one-channel 16-bit, 32-bit or float plane of PIL ``mode`` to uint8."""
    if mode in _SIXTEEN_BIT:
        # 16-bit files (PIL opens them as I;16 or I): keep the 8 most significant bits.
        return (np.clip(arr.astype(np.float32), 0, 65535) / 257.0 + 0.5).astype(np.uint8)
    if mode == "F":
        scale = 255.0 if float(np.nanmax(arr, initial=0.0)) <= 1.0 else 1.0
        return (np.clip(np.nan_to_num(arr) * scale, 0, 255) + 0.5).astype(np.uint8)
    return arr.astype(np.uint8)


def pil_to_rgb(img: Image.Image, name: str = "image") -> np.ndarray:
    """Any PIL image -> uint8 [H, W, 3] RGB (see the module docstring for the rules)."""
    if img.mode in (*_SIXTEEN_BIT, "F"):
        gray = plane_to_uint8(np.asarray(img), img.mode)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if img.mode != "RGB":
        try:
            img = img.convert("RGB")
        except ValueError as e:  # exotic modes PIL cannot convert
            raise ImageError(f"cannot read {name}: unsupported image mode {img.mode}: {e}") from None
    return np.asarray(img, dtype=np.uint8).copy()


def read_image(path: str | Path) -> np.ndarray:
    """Read a photo as uint8 [H, W, 3] RGB.

    Raises:
        ImageError: the file cannot be used (the message says why).
    """
    return pil_to_rgb(open_image(path), str(path))


def as_rgb(image) -> np.ndarray:
    """Anything image-like -> uint8 [H, W, 3] RGB.

    Accepts a path (str / Path), a PIL image, or an array: uint8 / uint16 / float
    ([0, 1]) of shape [H, W] (gray), [H, W, 1], [H, W, 3] (RGB) or [H, W, 4] (RGBA, alpha
    dropped).

    Raises:
        ImageError: an unreadable file or an array of another shape or dtype.
    """
    if isinstance(image, (str, Path)):
        return read_image(image)
    if isinstance(image, Image.Image):
        return pil_to_rgb(ImageOps.exif_transpose(image))
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(
            f"expected an image array of shape [H, W], [H, W, 3] or [H, W, 4], got {arr.shape}"
        )
    arr = arr[:, :, :3]
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == np.uint16:
        return (arr.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise ImageError("a float image must hold finite values in [0, 1]")
        return (arr * 255.0 + 0.5).astype(np.uint8)
    raise ImageError(f"unsupported image dtype {arr.dtype}; use uint8, uint16 or float in [0, 1]")


_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
            ".tif": "TIFF", ".tiff": "TIFF"}


def write_image(path: str | Path, array: np.ndarray) -> None:
    """Write uint8 [H, W] (gray), [H, W, 3] (RGB) or [H, W, 4] (RGBA) atomically.

    The format follows the suffix; JPEG cannot hold alpha, so RGBA needs .png or .webp.
    """
    from segme.io.files import atomic_output

    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot write {path.name}: use one of {', '.join(_FORMATS)}")
    if array.ndim == 3 and array.shape[2] == 4 and fmt not in ("PNG", "WEBP", "TIFF"):
        raise ValueError(f"cannot write {path.name}: transparency needs .png, .webp or .tiff")
    img = Image.fromarray(array)
    opts = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    with atomic_output(path) as tmp:
        img.save(tmp, format=fmt, **opts)
