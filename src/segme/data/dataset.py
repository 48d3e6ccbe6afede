"""The torch Dataset over image/mask folders, with per-sample deterministic augmentation.

Determinism: every random draw for sample ``i`` in epoch ``e`` comes from a generator
seeded by (seed, e, i), so a sample is the same whatever the worker count, worker order or
history; a run resumed mid-epoch sees exactly the samples an uninterrupted run would.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from segme.data.augment import (
    BackgroundCompositor,
    _fit_short_side,
    build_eval_transform,
    build_train_transform,
    seed_transform,
    texture_transform,
)
from segme.data.folders import DataError, Pair, find_pairs, load_pair
from segme.data.prior import simulate_prior


def load_all(
    pairs: list[Pair], short_side: int | None, workers: int = 2
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Decode every pair once (threads), downscaled so the shorter side is <= ``short_side``.

    Raises:
        DataError: listing the bad pairs by name (up to five, and how many more).
    """

    def one(pair: Pair):
        try:
            image, mask = load_pair(pair)
        except DataError as e:
            return str(e)
        if short_side:
            image = _fit_short_side(image, short_side)
            mask = _fit_short_side(mask, short_side)
        return image, mask

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        items = list(pool.map(one, pairs))
    problems = [x for x in items if isinstance(x, str)]
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise DataError(f"{len(problems)} bad image/mask pairs: {'; '.join(problems[:5])}{more}")
    return items


class SegDataset(Dataset):
    """Image/mask pairs as normalised tensors for training or validation.

    Args:
        root: a data folder (any layout ``find_pairs`` knows) or a list of pairs.
        size: square model input side in pixels.
        train: random augmentation (True) or the whole image resized (False).
        mean, std: per-channel normalisation of RGB in [0, 1] (from the ModelCard).
        backgrounds: folder of photos to composite people onto (training only).
        bg_prob: probability of compositing a training sample.
        prior: also return a simulated previous-frame alpha (4-channel models).
        consistency: also return a texture-augmented copy (PortraitNet's consistency loss).
        seed: base seed of all augmentation.
        cache: decode everything once into memory, downscaled to a shorter side of
            2 x ``size`` (decoding 480x640 JPEGs every epoch would cost more than a small
            model's forward pass on a CPU). Loaded eagerly so forked workers share it.
        strength: augmentation preset (``light``, ``default``, ``strong``).
        workers: threads used to fill the cache.

    Items are dicts: ``image`` float32 [3, S, S] normalised, ``mask`` float32 [1, S, S] in
    [0, 1], ``name`` str, and ``prior`` float32 [1, S, S] / ``image2`` float32 [3, S, S]
    when asked for.
    """

    def __init__(
        self,
        root: str | Path | list[Pair],
        size: int,
        train: bool,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        backgrounds: str | Path | None = None,
        bg_prob: float = 0.3,
        prior: bool = False,
        consistency: bool = False,
        seed: int = 0,
        cache: bool = True,
        strength: str = "default",
        workers: int = 2,
    ) -> None:
        self.pairs = list(root) if isinstance(root, list) else find_pairs(root)
        self.size, self.train, self.seed, self.epoch = size, train, seed, 0
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.prior, self.consistency = prior, consistency and train
        self.transform = build_train_transform(size, strength) if train else build_eval_transform(size)
        self.texture = texture_transform(strength) if self.consistency else None
        self.compositor = BackgroundCompositor(backgrounds, bg_prob) if backgrounds and train else None
        self.items = load_all(self.pairs, 2 * size, workers) if cache else None

    def __len__(self) -> int:
        return len(self.pairs)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation of ``epoch`` (call before creating the epoch's loader)."""
        self.epoch = epoch

    def _normalise(self, image: np.ndarray) -> torch.Tensor:
        x = (image.astype(np.float32) / 255.0 - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))  # [3, S, S]

    def __getitem__(self, i: int) -> dict:
        pair = self.pairs[i]
        image, mask = self.items[i] if self.items is not None else load_pair(pair)
        # validation draws do not depend on the epoch: the same priors every time
        key = [self.seed, self.epoch, i] if self.train else [self.seed, i]
        rng = np.random.default_rng(np.random.SeedSequence(key))
        if self.compositor is not None:
            image = self.compositor(image, mask, rng)
        seed_transform(self.transform, int(rng.integers(2**31)))
        out = self.transform(image=image, mask=mask)
        image, mask = out["image"], np.clip(out["mask"], 0.0, 1.0).astype(np.float32)
        item = {"image": self._normalise(image), "mask": torch.from_numpy(mask[None]),
                "name": pair.name}
        if self.prior:
            item["prior"] = torch.from_numpy(simulate_prior(mask, rng)[None])
        if self.texture is not None:
            seed_transform(self.texture, int(rng.integers(2**31)))
            item["image2"] = self._normalise(self.texture(image=image)["image"])
        return item
