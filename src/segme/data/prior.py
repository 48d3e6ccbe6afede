"""Previous-frame alpha simulation for 4-channel (video) models, PortraitNet style.

A video model receives the previous frame's alpha as a 4th input plane. Training pairs are
still photos, so the "previous alpha" is made from the true mask by the kinds of error a
real previous frame has: the person moved (affine), deformed (smooth warp, e.g. an arm or
the head turned), the previous prediction was blurry or too fat/thin (blur,
dilate/erode), or there was no previous frame at all (an empty prior, as at the first frame
or after the person re-entered). All magnitudes scale with the mask size, so the same
settings work at 128 and 512 pixels.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def _affine(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = mask.shape
    angle = rng.uniform(-8.0, 8.0)  # degrees
    scale = rng.uniform(0.9, 1.1)
    tx, ty = rng.uniform(-0.06, 0.06) * w, rng.uniform(-0.06, 0.06) * h
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, scale)
    m[:, 2] += (tx, ty)
    # Replicate: a person cut by the image border stays cut by it after a small shift.
    return cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _smooth_warp(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Thin-plate-like deformation: random displacements on a coarse grid, smoothly upsampled."""
    h, w = mask.shape
    grid = int(rng.integers(3, 6))
    amp = rng.uniform(0.01, 0.04) * min(h, w)
    d = rng.normal(0.0, amp, size=(2, grid, grid)).astype(np.float32)
    dx = cv2.resize(d[0], (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(d[1], (w, h), interpolation=cv2.INTER_CUBIC)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(mask, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _morph(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    r = max(1, round(rng.uniform(0.003, 0.015) * min(mask.shape)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    op = cv2.dilate if rng.random() < 0.5 else cv2.erode
    return op(mask, kernel)


def _blur(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    side = min(mask.shape)
    if rng.random() < 0.5:
        sigma = rng.uniform(0.003, 0.015) * side
        return cv2.GaussianBlur(mask, (0, 0), sigmaX=max(sigma, 0.3))
    # Motion blur: a line kernel at a random angle, as from fast movement between frames.
    k = max(3, round(rng.uniform(0.01, 0.04) * side) | 1)
    kernel = np.zeros((k, k), np.float32)
    angle = rng.uniform(0.0, math.pi)
    c = (k - 1) / 2.0
    dx, dy = math.cos(angle) * c, math.sin(angle) * c
    cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
    return cv2.filter2D(mask, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REPLICATE)


def simulate_prior(
    mask: np.ndarray, rng: np.random.Generator, empty_prob: float = 0.15
) -> np.ndarray:
    """Make a plausible previous-frame alpha from the true mask.

    Args:
        mask: float32 [H, W] in [0, 1], the current frame's true alpha.
        rng: generator for this sample; every draw comes from it.
        empty_prob: probability of an all-zero prior (first frame, no previous person).

    Returns:
        float32 [H, W] in [0, 1].
    """
    mask = np.ascontiguousarray(mask, dtype=np.float32)
    if rng.random() < empty_prob:
        return np.zeros_like(mask)
    out = _affine(mask, rng)
    if rng.random() < 0.5:
        out = _smooth_warp(out, rng)
    if rng.random() < 0.5:
        out = _morph(out, rng)
    if rng.random() < 0.7:
        out = _blur(out, rng)
    return np.clip(out, 0.0, 1.0)
