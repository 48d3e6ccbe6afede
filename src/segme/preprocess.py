"""Image -> model input. numpy + OpenCV only (no torch).

The evaluation protocol (and the default inference path) resizes the whole image to the
model's input size, ignoring aspect ratio, exactly as the models were validated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from segme.cards import ModelCard

CHANNELS = ("rgb", "bgr")  # colour orders a caller's arrays may come in; OpenCV's is bgr


def check_channels(channels: str) -> str:
    if channels not in CHANNELS:
        raise ValueError(f"channels must be 'rgb' or 'bgr' (the colour order of your image "
                         f"arrays; OpenCV's is bgr), got {channels!r}")
    return channels


def to_rgb(image: np.ndarray, channels: str) -> np.ndarray:
    """uint8 [H, W, 3] in ``channels`` order -> uint8 [H, W, 3] RGB (a new array for bgr)."""
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if channels == "bgr" else image


@dataclass(frozen=True)
class Meta:
    """What ``restore`` needs to map a model-size alpha back onto the source image."""

    height: int  # source image height in pixels
    width: int  # source image width in pixels
    # the source shrunk to the model's input, grey uint8 [h, w]: guided upsampling's guide
    # at the alpha's resolution, from the resize already done (None: made when needed)
    grey: np.ndarray | None = field(default=None, compare=False, repr=False)


def prepare(
    image: np.ndarray, card: ModelCard, prior: np.ndarray | None = None
) -> tuple[np.ndarray, Meta]:
    """Resize and normalise one RGB image for a model.

    Args:
        image: uint8 [H, W, 3] RGB.
        card: the model's card (input size, mean/std, colour order, stateful inputs).
        prior: float32 [H, W] or [h, w] in [0, 1], the previous frame's alpha, for models
            whose card lists ``prev_alpha``; zeros when None.

    Returns:
        (x, meta): x float32 [1, C, h, w]; meta for ``restore``.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"expected a uint8 RGB image of shape [H, W, 3], got {image.dtype} {image.shape}"
        )
    h, w = card.input_size
    H, W = image.shape[:2]
    resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if H * W > h * w
                         else cv2.INTER_LINEAR)
    grey = cv2.cvtColor(resized, cv2.COLOR_RGB2GRAY)
    if card.color_order == "bgr":
        resized = resized[..., ::-1]
    x = (resized.astype(np.float32) / 255.0 - np.float32(card.mean)) / np.float32(card.std)
    planes = [x.transpose(2, 0, 1)]
    if card.stateful_inputs:
        if prior is None:
            prior = np.zeros((h, w), np.float32)
        elif prior.shape != (h, w):
            prior = cv2.resize(prior.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        planes.append(prior[None].astype(np.float32))
    return np.concatenate(planes, 0)[None], Meta(H, W, grey)
