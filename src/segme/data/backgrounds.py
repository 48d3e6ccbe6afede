"""Photos without people for compositing: the training photos with their person removed.

A model that sees people pasted onto only a few dozen backgrounds learns those backgrounds.
Each labelled photo also holds a real background around its person: remove the person
(inpaint a dilated copy of the mask) and it serves as one more place to paste people into.
The fill is smooth where the person was, so photos whose person covers most of the frame
are skipped: they would be mostly fill.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from segme.data.folders import Pair, load_pair
from segme.io.images import write_image


def remove_person(image: np.ndarray, mask: np.ndarray, work_side: int = 320) -> np.ndarray:
    """Inpaint the person out of a photo.

    Args:
        image: uint8 [H, W, 3] RGB.
        mask: float32 [H, W] in [0, 1] or uint8 [H, W] (nonzero = person).
        work_side: the fill is computed with the photo's long side shrunk to this (the
            fill is smooth anyway, and inpainting costs grow with the hole's area).

    Returns:
        uint8 [H, W, 3] RGB: the photo outside a dilated band around the person, the
        inpainted fill inside it.
    """
    h, w = mask.shape[:2]
    hole = (np.asarray(mask) > (0.5 if mask.dtype != np.uint8 else 127)).astype(np.uint8)
    grow = max(3, round(0.02 * np.hypot(h, w)))  # the mask's edge is never exact
    hole = cv2.dilate(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
    k = min(1.0, work_side / max(h, w))
    sw, sh = max(1, round(w * k)), max(1, round(h * k))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(hole, (sw, sh), interpolation=cv2.INTER_NEAREST)
    fill = cv2.inpaint(small, small_hole, 5, cv2.INPAINT_TELEA)
    fill = cv2.resize(fill, (w, h), interpolation=cv2.INTER_LINEAR)
    soft = cv2.GaussianBlur(hole.astype(np.float32), (0, 0), grow / 2)[:, :, None]
    out = image.astype(np.float32) * (1 - soft) + fill.astype(np.float32) * soft
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def write_backgrounds(pairs: Iterable[Pair], out: str | Path,
                      max_person: float = 0.5) -> tuple[int, int]:
    """Write ``out/<stem>.jpg`` for every pair whose person covers at most ``max_person``
    of the frame; returns (written, skipped)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = skipped = 0
    for pair in pairs:
        image, mask = load_pair(pair)
        if float((mask > 0.5).mean()) > max_person:
            skipped += 1
            continue
        write_image(out / f"{Path(pair.image).stem}.jpg", remove_person(image, mask))
        written += 1
    return written, skipped
