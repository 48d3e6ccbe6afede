"""Data: folder layouts, augmentation, previous-frame priors, synthetic pairs.

``folders`` and ``synthetic`` are torch-free; ``SegDataset`` (torch) is imported lazily.
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

__all__ = ["DataError", "Pair", "SegDataset", "check_pairs", "find_pairs", "load_image",
           "load_mask", "load_pair"]


def __getattr__(name: str):
    if name == "SegDataset":
        from segme.data.dataset import SegDataset

        return SegDataset
    raise AttributeError(f"module 'segme.data' has no attribute {name!r}")
