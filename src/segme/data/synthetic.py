"""Synthetic "head and shoulders" images with exactly known masks, for tests and demos.

No torch, no data files: an ellipse head (with hair) and rounded shoulders in random
colours over a textured random background. The mask is drawn at 4x resolution and area-
downsampled, so edges are anti-aliased like a matte, and it is quantised to k/255 so the
PNG written to disk holds exactly the returned values.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

_SS = 4  # supersampling factor for anti-aliased edges


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Low-frequency colour field + a few shapes + pixel noise: float32 [H, W, 3] in 0..255."""
    g = int(rng.integers(2, 6))
    field = rng.uniform(0, 255, size=(g, g, 3)).astype(np.float32)
    bg = cv2.resize(field, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(int(rng.integers(0, 4))):  # clutter, so "not uniform" does not mean "person"
        color = tuple(float(c) for c in rng.uniform(0, 255, 3))
        p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.rectangle(bg, p0, p1, color, -1)
    bg += rng.normal(0.0, rng.uniform(2, 12), size=bg.shape).astype(np.float32)
    return bg


def synthetic_pair(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw one portrait.

    Args:
        rng: generator; the same state gives the same picture.
        h: height in pixels.
        w: width in pixels.

    Returns:
        image uint8 [H, W, 3] RGB and mask float32 [H, W] with values k/255 in [0, 1].
    """
    H, W = h * _SS, w * _SS
    s = min(H, W)
    cx = rng.uniform(0.35, 0.65) * W
    head_r = rng.uniform(0.13, 0.2) * s
    cy = rng.uniform(0.3, 0.5) * H
    head_axes = (round(head_r * rng.uniform(0.8, 0.9)), round(head_r))
    hi = np.zeros((H, W), np.uint8)
    cv2.ellipse(hi, (round(cx), round(cy)), head_axes, 0, 0, 360, 255, -1)
    neck_w = head_axes[0] * 0.5
    cv2.rectangle(
        hi, (round(cx - neck_w), round(cy)), (round(cx + neck_w), round(cy + 1.6 * head_r)), 255, -1
    )
    # Shoulders: a wide ellipse whose centre lies low, so only its rounded top is visible.
    sh_top = cy + head_r * rng.uniform(1.2, 1.6)
    sh_axes = (round(rng.uniform(0.35, 0.5) * W), round(max(H - sh_top, 1) * rng.uniform(1.0, 1.6)))
    cv2.ellipse(hi, (round(cx), round(sh_top + sh_axes[1])), sh_axes, 0, 0, 360, 255, -1)
    mask8 = cv2.resize(hi, (w, h), interpolation=cv2.INTER_AREA)

    # Person colours: skin-ish head, darker hair cap, random clothes; drawn at low res.
    person = np.zeros((h, w, 3), np.float32)
    clothes = rng.uniform(0, 255, 3)
    person[:] = clothes
    skin = np.array([rng.uniform(120, 240), rng.uniform(80, 190), rng.uniform(60, 160)])
    c = (round(cx / _SS), round(cy / _SS))
    ax = (max(1, round(head_axes[0] / _SS)), max(1, round(head_axes[1] / _SS)))
    cv2.ellipse(
        person, c, (ax[0] + 1, ax[1] + round(1.6 * head_r / _SS)), 0, 0, 360, skin.tolist(), -1
    )
    hair = rng.uniform(10, 120, 3)
    cv2.ellipse(person, c, (ax[0] + 1, ax[1] + 1), 0, 180, 360, hair.tolist(), -1)
    shade = np.linspace(1.1, 0.85, h, dtype=np.float32)[:, None, None]  # light from above
    person *= shade

    a = mask8.astype(np.float32)[:, :, None] / 255.0
    image = person * a + _background(rng, h, w) * (1.0 - a)
    image = np.clip(image + 0.5, 0, 255).astype(np.uint8)
    return image, mask8.astype(np.float32) / 255.0


def make_synthetic_dataset(
    root: str | Path,
    n_train: int = 16,
    n_val: int = 8,
    size: tuple[int, int] = (96, 128),
    seed: int = 0,
) -> Path:
    """Write a tiny dataset in segme's layout.

    Creates ``root/{train,val}/images/synth_0000.jpg`` and ``root/{train,val}/masks/synth_0000.png``.

    Args:
        root: output folder (created).
        n_train: training pairs.
        n_val: validation pairs.
        size: (width, height) of every image, like PIL; (96, 128) is portrait 3:4.
        seed: the same seed writes the same files.

    Returns:
        ``root`` as a Path.
    """
    root = Path(root)
    w, h = size
    for split_id, (split, n) in enumerate((("train", n_train), ("val", n_val))):
        images, masks = root / split / "images", root / split / "masks"
        images.mkdir(parents=True, exist_ok=True)
        masks.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            rng = np.random.default_rng([seed, split_id, k])
            image, mask = synthetic_pair(rng, h, w)
            Image.fromarray(image).save(images / f"synth_{k:04d}.jpg", quality=95)
            Image.fromarray(np.round(mask * 255).astype(np.uint8)).save(
                masks / f"synth_{k:04d}.png"
            )
    return root
