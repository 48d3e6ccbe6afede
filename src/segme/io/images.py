"""Reading images robustly (numpy + Pillow; no torch).

Every entry point reads photos through here, so all of them treat odd files alike: EXIF
orientation applied; grayscale, palette, 1-bit, CMYK, 16-bit and float images converted to
8-bit RGB; an alpha channel dropped (the colour planes of a photo with alpha are still the
photo); corrupt, truncated, empty and decompression-bomb files refused with one line.
"""

from __future__ import annotations

import contextlib
import io
import struct
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
_SIXTEEN_BIT = ("I", "I;16", "I;16B", "I;16L", "I;16N")
T = TypeVar("T")


class ImageError(ValueError):
    """An image that cannot be used; the message names the file and the reason."""


class ImageTooLarge(ImageError):
    """An image with more pixels than the reader allows (a decompression-bomb guard)."""


# What decode_image accepts by default: the photo formats browsers and phones send (a
# camera's multi-picture JPEG opens as JPEG). Pillow's other plugins stay off for bytes from
# strangers: EPS, for one, runs Ghostscript.
UPLOAD_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")


_BOMB_WARNING_LOCK = threading.Lock()
_REDUCIBLE = ("L", "RGB", "I", "F")  # modes Image.reduce averages as pixels (not palettes)
# rows converted to numpy at a time: PIL's tobytes() of a whole image is a second copy of it
_BAND_BYTES = 1 << 22


@contextlib.contextmanager
def _no_bomb_warning(pixels: int | None = None) -> Iterator[None]:
    """PIL's DecompressionBombWarning off for the block (given ``pixels``: only for an image
    large enough to warn). The caller has its limit; between MAX_IMAGE_PIXELS and twice that
    PIL only warns, above it raises (ImageTooLarge here). catch_warnings swaps process-wide
    filters, so two threads decoding at once (the server's workers) take turns: unlocked,
    one thread's exit would restore the filters under the other's feet."""
    limit = Image.MAX_IMAGE_PIXELS
    if pixels is not None and (limit is None or pixels <= limit):
        yield
        return
    with _BOMB_WARNING_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


@contextlib.contextmanager
def _opened(fp, name: str, max_pixels: int | None = None,
            formats: tuple[str, ...] | None = None) -> Iterator[Image.Image]:
    """``Image.open(fp)`` with its size checked against ``max_pixels`` (header only, nothing
    decoded yet); any failure in the block becomes ImageError (ImageTooLarge for size)."""
    try:
        with _no_bomb_warning():
            img = Image.open(fp, formats=formats)
        with img:
            # the header gives the size: refuse before decoding, not after
            if max_pixels is not None and img.width * img.height > max_pixels:
                raise ImageTooLarge(
                    f"cannot read {name}: {img.width}x{img.height} pixels is more than the "
                    f"{max_pixels / 1e6:g} megapixels allowed; send a smaller image"
                )
            yield img
    except (ImageError, MemoryError):
        raise
    except FileNotFoundError:
        raise ImageError(f"cannot read {name}: file not found") from None
    except Image.DecompressionBombError as e:
        raise ImageTooLarge(f"cannot read {name}: {e}") from None
    except UnidentifiedImageError:
        kinds = f" ({', '.join(formats)})" if formats else ""
        raise ImageError(f"cannot read {name}: not an image of a known format{kinds}") from None
    except Exception as e:
        # corrupt data makes PIL's plugins raise OSError, ValueError, SyntaxError,
        # struct.error, IndexError...: each of them means a bad file, not a bug here
        raise ImageError(f"cannot read {name}: {str(e) or type(e).__name__}") from None


def _open(fp, name: str, max_pixels: int | None = None,
          formats: tuple[str, ...] | None = None, shrink: int = 1,
          then: Callable[[Image.Image], T] = Image.Image.copy) -> T:
    """Open ``fp`` (a path or a binary file object), check its size, decode (at
    ``1/shrink`` of each side), EXIF-orient; ``then(image)`` before the file is closed."""
    with _opened(fp, name, max_pixels, formats) as img:
        whole = img.size
        size = (-(-img.width // shrink), -(-img.height // shrink))
        if shrink > 1:
            img.draft(None, size)  # JPEG: decoded at 1/2, 1/4 or 1/8 of each side, not below
        with _no_bomb_warning(whole[0] * whole[1]):
            img.load()  # decode now: a truncated file fails here, not later
        if img.size != size:
            if img.mode not in _REDUCIBLE:  # converted as pil_to_rgb would, before shrinking
                img = img.convert("L" if img.mode in ("1", "LA") else
                                  "I" if img.mode in _SIXTEEN_BIT else "RGB")
            # box averages: over whole factors, or over what a JPEG draft left to do
            img = (img.reduce(shrink) if img.size == whole
                   else img.resize(size, Image.Resampling.BOX))
        ImageOps.exif_transpose(img, in_place=True)
        return then(img)


def open_image(path: str | Path) -> Image.Image:
    """Open, fully decode and EXIF-orient an image.

    Raises:
        ImageError: missing, empty, corrupt, truncated, or above PIL's decompression-bomb
            limit (twice ``Image.MAX_IMAGE_PIXELS``, about 179 megapixels).
    """
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"cannot read {path}: it is a folder, not an image")
    if path.is_file() and path.stat().st_size == 0:
        raise ImageError(f"cannot read {path}: it is empty (0 bytes)")
    return _open(path, str(path))


def decode_image(data: bytes, name: str = "the image", max_pixels: int | None = None,
                 formats: tuple[str, ...] | None = UPLOAD_FORMATS, shrink: int = 1) -> np.ndarray:
    """Decode an encoded image held in memory (an upload) as uint8 [H, W, 3] RGB.

    The same rules as ``read_image`` (EXIF orientation, 16-bit, CMYK, palette, alpha...).

    Args:
        data: the encoded file's bytes.
        name: how error messages name the image (e.g. "field 'file'").
        max_pixels: refuse images with more pixels (width x height) than this, read from the
            header before anything is decoded; None: PIL's decompression-bomb limit only.
        formats: Pillow format names to try (None: every plugin Pillow has).
        shrink: an integer factor: the image comes back ``ceil(H / shrink) x ceil(W /
            shrink)``, box-averaged, for a caller that needs no more. JPEG decodes at that
            size (or at 1/2, 1/4 of it) and never holds the whole image; other formats decode
            whole in their own mode (1 byte a pixel for grey, palette and 1-bit) and shrink
            before the RGB conversion.

    Raises:
        ImageTooLarge: more pixels than ``max_pixels`` (or PIL's limit).
        ImageError: empty, not an image, truncated or corrupt (the message says which).
    """
    if not data:
        raise ImageError(f"cannot read {name}: it is empty (0 bytes)")
    return _open(io.BytesIO(data), name, max_pixels, formats, shrink,
                 lambda img: _to_rgb(img, name))


def image_size(data: bytes, name: str = "the image", max_pixels: int | None = None,
               formats: tuple[str, ...] | None = UPLOAD_FORMATS) -> tuple[int, int]:
    """(H, W) of the array ``decode_image`` would return (EXIF orientation applied), read
    from the header: nothing is decoded, so a truncated file passes here.

    Raises:
        ImageTooLarge, ImageError: as ``decode_image``.
    """
    if not data:
        raise ImageError(f"cannot read {name}: it is empty (0 bytes)")
    with _opened(io.BytesIO(data), name, max_pixels, formats) as img:
        if img.format == "PNG" and "exif" not in img.info:
            # an eXIf chunk after the pixels: Pillow's getexif() would decode them to reach it
            exif = Image.Exif()
            exif.load(_png_chunk(data, b"eXIf"))
        else:
            exif = img.getexif()
        turned = exif.get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8)  # as exif_transpose
        return (img.width, img.height) if turned else (img.height, img.width)


def _png_chunk(data: bytes, kind: bytes) -> bytes:
    """The first chunk ``kind`` of a PNG file's bytes (empty when there is none)."""
    if kind not in data:  # a C-speed scan spares the walk over every chunk
        return b""
    pos = 8
    while pos + 8 <= len(data):
        length, name = struct.unpack_from(">I4s", data, pos)
        if name == kind:
            return data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return b""


def _to_rgb(img: Image.Image, name: str) -> np.ndarray:
    """``pil_to_rgb`` a band of rows at a time: the image and its array, not a third copy."""
    rows = max(1, _BAND_BYTES // (4 * img.width))
    if img.mode == "F" or img.height <= rows:  # F scales by the whole image's maximum
        return pil_to_rgb(img, name)
    out = np.empty((img.height, img.width, 3), np.uint8)
    for y in range(0, img.height, rows):
        out[y : y + rows] = pil_to_rgb(img.crop((0, y, img.width, min(y + rows, img.height))),
                                       name)
    return out


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
    if image is not None and (arr.ndim == 0 or arr.dtype == object):
        raise ImageError(f"expected a path, a PIL image or an image array, "
                         f"got {type(image).__name__}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        got = "None" if image is None else str(arr.shape)
        hint = ""
        if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] > 4:
            hint = "; channels first? pass arr.transpose(1, 2, 0)"
        raise ImageError(
            f"expected an image array of shape [H, W], [H, W, 3] or [H, W, 4], got {got}{hint}"
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


def _format_for(name: str, suffix: str, array: np.ndarray) -> tuple[str, dict]:
    """PIL format and save options for an output named ``name`` with ``suffix``."""
    fmt = _FORMATS.get(suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot write {name}: use one of {', '.join(_FORMATS)}")
    if array.ndim == 3 and array.shape[2] == 4 and fmt not in ("PNG", "WEBP", "TIFF"):
        raise ValueError(f"cannot write {name}: transparency needs .png, .webp or .tiff")
    return fmt, {"quality": 95} if fmt in ("JPEG", "WEBP") else {}


def encode_image(array: np.ndarray, suffix: str) -> bytes:
    """uint8 [H, W] (gray), [H, W, 3] (RGB) or [H, W, 4] (RGBA) -> the bytes of a file of
    the format ``suffix`` names (``.png``, ``.jpg``...)."""
    fmt, opts = _format_for(f"a {suffix} file", suffix, array)
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **opts)
    return buf.getvalue()


def write_image(path: str | Path, array: np.ndarray) -> None:
    """Write uint8 [H, W] (gray), [H, W, 3] (RGB) or [H, W, 4] (RGBA) atomically.

    The format follows the suffix; JPEG cannot hold alpha, so RGBA needs .png or .webp.
    """
    from segme.io.files import atomic_output

    path = Path(path)
    fmt, opts = _format_for(path.name, path.suffix, array)
    img = Image.fromarray(array)
    with atomic_output(path) as tmp:
        img.save(tmp, format=fmt, **opts)
