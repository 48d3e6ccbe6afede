"""Model output -> alpha at the source image's size. numpy + OpenCV only (no torch)."""

from __future__ import annotations

import cv2
import numpy as np

from segme.preprocess import Meta


def restore(alpha: np.ndarray, meta: Meta) -> np.ndarray:
    """Model alpha [1, 1, h, w] or [h, w] -> float32 [H, W] in [0, 1] at the source size."""
    a = np.asarray(alpha, np.float32).reshape(alpha.shape[-2:])
    a = cv2.resize(a, (meta.width, meta.height), interpolation=cv2.INTER_LINEAR)
    return np.clip(a, 0.0, 1.0)
