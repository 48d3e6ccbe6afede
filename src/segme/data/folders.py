"""Image/mask folder layouts, pairing and robust decoding.

numpy, Pillow and OpenCV only: torch-free evaluation reads data through this module too.

Supported layouts (``root`` is one split folder, e.g. ``portraits/train``):

* segme:   ``root/images/*`` + ``root/masks/*``
* P3M-10k: ``root/blurred_image/*`` (or ``root/original_image/*``) + ``root/mask/*``.
  When both image folders exist (P3M-500-P) ``blurred_image`` wins: it is what P3M trains
  on and what its privacy-preserving benchmark evaluates. P3M-500-NP has only
  ``original_image``, which is then used.
* MMNet:   ``root/image/*`` + ``root/mask/*``

Images and masks are paired by file stem. The layout is never guessed one level deeper:
pointing at the dataset root instead of a split folder gives an error that lists what was
expected and what was found.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from segme.io.images import IMAGE_SUFFIXES, ImageError, open_image, plane_to_uint8, read_image

# Preference order when a mask exists under several suffixes (png is lossless: first).
MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".webp", ".jpg", ".jpeg")

# (image folder, mask folder, layout name), tried in this order. P3M comes before MMNet
# because both use ``mask/``; ``blurred_image`` before ``original_image`` (see module doc).
LAYOUTS = (
    ("images", "masks", "segme"),
    ("blurred_image", "mask", "p3m"),
    ("original_image", "mask", "p3m"),
    ("image", "mask", "mmnet"),
)

# How many offending files an error message names before summarising the rest.
_MAX_LISTED = 5


class DataError(ValueError):
    """A dataset problem (missing, unreadable or inconsistent file); the message names the file.

    When raised inside a ``torch.utils.data.DataLoader`` worker, torch re-creates the
    exception in the main process from one string made of the worker's whole traceback.
    The constructor recognises that string and keeps only the original message, so the
    training loop can print ``str(err)`` as one clear line; the full text stays available
    as ``worker_traceback``.
    """

    def __init__(self, message: str = "") -> None:
        self.worker_traceback: str | None = None
        if message.startswith("Caught DataError") and "Original Traceback" in message:
            self.worker_traceback = message
            last = [line for line in message.strip().splitlines() if "DataError: " in line]
            if last:
                message = last[-1].split("DataError: ", 1)[1]
        super().__init__(message)


@dataclass(frozen=True)
class Pair:
    """One training/evaluation sample on disk.

    Attributes:
        name: image file stem, e.g. ``pfcn_00012``; unique within a folder.
        image: path of the photo.
        mask: path of the person mask (same width and height as the image).
    """

    name: str
    image: Path
    mask: Path


def _files_by_stem(folder: Path, suffixes: Sequence[str], kind: str) -> dict[str, Path]:
    """Map stem -> file for the files in ``folder`` with one of ``suffixes`` (case-insensitive)."""
    rank = {s: i for i, s in enumerate(suffixes)}
    found: dict[str, Path] = {}
    for path in folder.iterdir():
        suffix = path.suffix.lower()
        if path.name.startswith(".") or suffix not in rank or not path.is_file():
            continue
        other = found.get(path.stem)
        if other is not None:
            if kind == "image":
                # Two photos with one stem cannot be paired to one mask unambiguously.
                raise DataError(
                    f"two images share the name {path.stem!r}: {other} and {path}; "
                    "rename or remove one"
                )
            if rank[suffix] > rank[other.suffix.lower()]:
                continue
        found[path.stem] = path
    return found


def _list_subdirs(root: Path) -> list[str]:
    return sorted(p.name + "/" for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _more(items: list[str]) -> str:
    shown = "; ".join(items[:_MAX_LISTED])
    if len(items) > _MAX_LISTED:
        shown += f" (and {len(items) - _MAX_LISTED} more)"
    return shown


def find_layout(root: str | Path) -> tuple[Path, Path, str]:
    """Detect the folder layout of one split folder.

    Args:
        root: split folder, e.g. ``portraits/train`` or ``P3M-10k/train``.

    Returns:
        (image folder, mask folder, layout name: "segme" | "p3m" | "mmnet").

    Raises:
        DataError: ``root`` is missing or holds none of the known layouts.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    for image_dir, mask_dir, layout in LAYOUTS:
        if (root / image_dir).is_dir() and (root / mask_dir).is_dir():
            return root / image_dir, root / mask_dir, layout
    expected = ", ".join(f"{i}/ + {m}/" for i, m, _ in LAYOUTS)
    found = ", ".join(_list_subdirs(root)) or "no sub-folders"
    raise DataError(
        f"no image/mask folders in {root}: expected one of {expected}; found {found}. "
        "Point at a split folder (e.g. .../train), not the dataset root"
    )


def find_pairs(root: str | Path) -> list[Pair]:
    """Pair every image of a split folder with its mask by file stem.

    Args:
        root: split folder in one of the layouts of this module's docstring.

    Returns:
        Pairs sorted by name (deterministic across file systems).

    Raises:
        DataError: folder missing, unknown layout, an image without mask, a mask without
            image, or no pairs at all. Files are only listed here; readability and sizes
            are checked by ``load_pair`` (lazily) or ``check_pairs`` (eagerly).
    """
    image_dir, mask_dir, _ = find_layout(root)
    images = _files_by_stem(image_dir, IMAGE_SUFFIXES, "image")
    masks = _files_by_stem(mask_dir, MASK_SUFFIXES, "mask")
    missing_masks = sorted(set(images) - set(masks))
    if missing_masks:
        raise DataError(
            _more(
                [
                    f"missing mask for {n} (expected {mask_dir / (n + '.png')})"
                    for n in missing_masks
                ]
            )
        )
    missing_images = sorted(set(masks) - set(images))
    if missing_images:
        raise DataError(
            _more(
                [
                    f"mask without image: {masks[n]} (expected {image_dir / n}.jpg or .png)"
                    for n in missing_images
                ]
            )
        )
    if not images:
        raise DataError(
            f"no image/mask pairs in {root}: {image_dir} and {mask_dir} hold no files ending in "
            + " ".join(IMAGE_SUFFIXES)
        )
    return [Pair(name, images[name], masks[name]) for name in sorted(images)]


def _open(path: Path) -> Image.Image:
    """``open_image`` with its errors as DataError (same one-line message)."""
    try:
        return open_image(path)
    except ImageError as e:
        raise DataError(str(e)) from None


def load_image(path: str | Path) -> np.ndarray:
    """Read a photo as uint8 [H, W, 3] RGB (rules: ``segme.io.images``).

    Raises:
        DataError: file missing, unreadable, truncated or larger than PIL's pixel limit.
    """
    try:
        return read_image(path)
    except ImageError as e:
        raise DataError(str(e)) from None


def load_mask(path: str | Path) -> np.ndarray:
    """Read a person mask as float alpha.

    Rules, kept simple on purpose:

    * 8-bit gray: value / 255, so binary 0/255 and soft masks both work. A mask whose
      maximum is 1 is a 0/1 label map (common in exported datasets) and is scaled to 0/1.
    * 16-bit gray: value / 65535.
    * colour masks: the first channel. With an alpha channel that is not fully opaque
      (a matting cut-out), the alpha channel is the mask.
    * palette masks: converted to gray through their palette.

    Args:
        path: mask file.

    Returns:
        float32 array [H, W] in [0, 1].

    Raises:
        DataError: file missing, unreadable or truncated.
    """
    path = Path(path)
    img = _open(path)
    mode = img.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img).astype(np.float32)
        return np.clip(arr / 65535.0, 0.0, 1.0)
    if mode == "F":
        return plane_to_uint8(np.asarray(img), mode).astype(np.float32) / 255.0
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        alpha = np.asarray(img.convert("RGBA"))[:, :, 3]
        if alpha.min() < 255:
            return alpha.astype(np.float32) / 255.0
    if mode in ("RGB", "RGBA", "CMYK", "YCbCr"):
        arr = np.asarray(img.convert("RGB"))[:, :, 0]
    else:
        arr = np.asarray(img.convert("L"))
    if arr.size and arr.max() == 1:
        return arr.astype(np.float32)
    return arr.astype(np.float32) / 255.0


def load_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate one pair.

    Returns:
        image uint8 [H, W, 3] RGB and mask float32 [H, W] in [0, 1].

    Raises:
        DataError: a file is unreadable (message ``cannot read <path>: <reason>``) or the sizes
            differ (message starts with the pair name).
    """
    image = load_image(pair.image)
    mask = load_mask(pair.mask)
    if image.shape[:2] != mask.shape:
        (ih, iw), (mh, mw) = image.shape[:2], mask.shape
        raise DataError(
            f"{pair.name}: mask size {mw}x{mh} differs from image size {iw}x{ih} "
            f"({pair.mask} vs {pair.image})"
        )
    return image, mask


def _problem(pair: Pair) -> str | None:
    try:
        load_pair(pair)
    except DataError as e:
        return str(e)
    return None


def check_pairs(pairs: Iterable[Pair], workers: int = 4, limit: int | None = None) -> list[str]:
    """Decode every pair once and report what is wrong, so training fails before it starts.

    Threads suffice: Pillow releases the GIL while decoding.

    Args:
        pairs: pairs from ``find_pairs``.
        workers: decoding threads.
        limit: stop after this many problems (``None``: check everything).

    Returns:
        One message per bad pair (each names the file), in pair order; empty when all is well.
    """
    problems: list[str] = []
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        for message in pool.map(_problem, pairs):
            if message is not None:
                problems.append(message)
                if limit is not None and len(problems) >= limit:
                    break
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # do not decode the rest after `limit`
    return problems
