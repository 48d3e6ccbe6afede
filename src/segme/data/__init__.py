"""Datasets for the supported folder layouts, augmentation, compositing, prior simulation
and synthetic camera motion.

``folders``, ``motion``, ``prior`` and ``synthetic`` need numpy, Pillow and OpenCV only and
are imported eagerly; the torch dataset and the albumentations pipelines load on first use,
so torch-free evaluation can ``from segme.data import find_pairs, load_pair``.
"""

from __future__ import annotations

from segme.data.folders import (
    DataError,
    Pair,
    check_pairs,
    find_pairs,
    load_image,
    load_mask,
    load_pair,
)
from segme.data.motion import camera_path, motion_clip
from segme.data.prior import simulate_prior
from segme.data.synthetic import make_synthetic_dataset, synthetic_pair

_LAZY = {
    "SegDataset": "segme.data.dataset",
    "BackgroundCompositor": "segme.data.augment",
    "SceneComposer": "segme.data.augment",
    "build_train_transform": "segme.data.augment",
    "build_eval_transform": "segme.data.augment",
    "texture_transform": "segme.data.augment",
}

__all__ = [
    "DataError",
    "Pair",
    "camera_path",
    "check_pairs",
    "find_pairs",
    "load_image",
    "load_mask",
    "load_pair",
    "make_synthetic_dataset",
    "motion_clip",
    "simulate_prior",
    "synthetic_pair",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'segme.data' has no attribute {name!r}")
