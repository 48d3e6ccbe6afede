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
