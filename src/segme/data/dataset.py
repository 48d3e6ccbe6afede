"""torch Dataset over an image/mask folder: decoding cache, augmentation, priors, copies.

Every random draw of sample i in epoch e comes from generators seeded by
``sample_seed(seed, e, i, stream)``, so a resumed run reproduces the same samples whatever
the number or order of DataLoader workers. Call ``set_epoch(e)`` before iterating an epoch;
with ``persistent_workers=True`` the workers keep the epoch they were started with, so use
non-persistent workers (the default) or recreate the loader each epoch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from segme.cards import as_hw
from segme.data.augment import (
    STREAM_AUGMENT,
    STREAM_BACKGROUND,
    STREAM_PRIOR,
    STREAM_SCENE,
    STREAM_TEXTURE,
    BackgroundCompositor,
    SceneComposer,
    _fit_short_side,
    build_eval_transform,
    build_train_transform,
    sample_seed,
    seed_transform,
    texture_transform,
)
from segme.data.folders import DataError, Pair, _more, find_pairs, load_pair
from segme.data.prior import simulate_prior

# Cached images keep a shorter side of at most CACHE_SCALE x the model input: enough for a
# crop of half the area to still be sampled at full detail, small enough that 2,867
# portraits take ~2.4 GB at size 256 (less at smaller sizes).
CACHE_SCALE = 2.0


class SegDataset(Dataset):
    """Person-segmentation samples from a folder (or a list of pairs).

    Args:
        root: split folder in a layout ``find_pairs`` knows, or pairs from it.
        size: model input, int (square) or (height, width).
        train: random augmentation (True) or the whole image resized (False).
        mean: per-channel RGB mean in [0, 1] units (from the ModelCard).
        std: per-channel RGB std in [0, 1] units.
        backgrounds: folder of background photos to composite people onto (train only).
        bg_prob: probability of compositing a training sample onto a background.
        scenes: probability of turning a training sample into a scene made of several
            (``SceneComposer``: collages, people pasted onto backgrounds at other sizes and
            framings, nobody at all).
        scene_min_height: smallest person pasted into a scene, a fraction of its height.
        scene_harmonize: probability that a pasted person's colours move towards the
            background's.
        replace_background: file-name prefixes (sources) whose photos are always put onto
            one of ``backgrounds`` when they are not made into a scene: their own
            backgrounds hold people the masks leave out (ccp's street bystanders), which
            would teach the model that such people are background.
        prior: add a simulated previous-frame alpha (``prior``) for 4-channel video models.
        consistency: add a texture-augmented copy (``image2``) for the consistency loss
            (train only).
        seed: base seed of all random draws.
        cache: decode every pair once, eagerly, in ``__init__`` and keep it in memory,
            downscaled to a shorter side of at most ``CACHE_SCALE * size``. Eager loading
            in the main process means a bad file fails before training, and forked
            DataLoader workers share the cache copy-on-write instead of each decoding again.
        strength: augmentation preset ("light", "default", "strong").
        min_scale: smallest training crop area fraction (overrides the preset).
        workers: decoding threads for the cache (Pillow releases the GIL);
            ``None``: up to 8, bounded by the CPU count.

    Items are dicts that default collate batches (no None values):
        image: float32 [3, h, w], ``(rgb / 255 - mean) / std``.
        mask: float32 [1, h, w] in [0, 1].
        name: str, the pair name.
        prior: float32 [1, h, w] in [0, 1] (only with ``prior=True``); in eval mode it is
            simulated with a generator fixed by (seed, index), so validation is repeatable.
        image2: float32 [3, h, w] (only with ``consistency=True`` and ``train=True``).

    Raises:
        DataError: from ``find_pairs``, or (with ``cache=True``) naming the unreadable or
            inconsistent pairs (up to five, and how many more); with ``cache=False``
            ``__getitem__`` raises it for the pair it reads.
    """

    def __init__(
        self,
        root: str | Path | Sequence[Pair],
        size: int | tuple[int, int],
        train: bool,
        mean: Sequence[float],
        std: Sequence[float],
        backgrounds: str | Path | None = None,
        bg_prob: float = 0.3,
        scenes: float = 0.0,
        scene_min_height: float = 0.3,
        scene_harmonize: float = 0.0,
        replace_background: Sequence[str] = (),
        prior: bool = False,
        consistency: bool = False,
        seed: int = 0,
        cache: bool = True,
        strength: str = "default",
        min_scale: float | None = None,
        workers: int | None = None,
    ) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.pairs = list(root) if isinstance(root, (list, tuple)) else find_pairs(root)
        if not self.pairs:
            raise DataError("no image/mask pairs given")
        self.size = as_hw(size)
        self.train = bool(train)
        self.with_prior = bool(prior)
        self.consistency = bool(consistency) and self.train
        self.seed = int(seed)
        self.replace_background = tuple(replace_background)
        if self.replace_background and train and backgrounds is None:
            raise ValueError("replacing the backgrounds of some sources needs background photos")
        self.epoch = 0
        mean_ = np.asarray(mean, np.float32).reshape(1, 1, 3)
        std_ = np.asarray(std, np.float32).reshape(1, 1, 3)
        # (rgb / 255 - mean) / std as one multiply-add.
        self._scale = 1.0 / (255.0 * std_)
        self._shift = -mean_ / std_
        self._cache_side = round(CACHE_SCALE * max(self.size))
        if self.train:
            self.transform = build_train_transform(self.size, strength, min_scale)
            self.texture = texture_transform(strength) if self.consistency else None
            # with bg_prob 0 the photos still serve the scenes
            self.compositor = (
                BackgroundCompositor(backgrounds, p=bg_prob, max_side=self._cache_side)
                if backgrounds is not None and (bg_prob > 0 or scenes != 0
                                                or self.replace_background)
                else None
            )
            self.scenes = (  # SceneComposer refuses a probability outside [0, 1]
                SceneComposer(self._load, len(self.pairs), self._cache_side, self.compositor,
                              p=scenes, min_height=scene_min_height,
                              harmonize=scene_harmonize)
                if scenes != 0
                else None
            )
        else:
            self.transform = build_eval_transform(self.size)
            self.texture = None
            self.compositor = None
            self.scenes = None
        self._cache: list[tuple[np.ndarray, np.ndarray]] | None = None
        if cache:
            self._cache = self._decode_all(workers or min(8, os.cpu_count() or 1))

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.pairs]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose samples ``__getitem__`` returns (train mode)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def _decode(self, pair: Pair) -> tuple[np.ndarray, np.ndarray]:
        """Image uint8 [H, W, 3] and mask uint8 [H, W] (alpha * 255), downscaled for the cache."""
        image, mask = load_pair(pair)
        image = _fit_short_side(image, self._cache_side)
        mask = _fit_short_side(mask, self._cache_side)
        # uint8 quarters the memory; 1/255 steps are far below label noise.
        return image, np.round(mask * 255.0).astype(np.uint8)

    def _decode_all(self, workers: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Decode every pair; a bad pair is reported together with all the others."""

        def one(pair: Pair) -> tuple[np.ndarray, np.ndarray] | str:
            try:
                return self._decode(pair)
            except DataError as e:
                return str(e)

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            items = list(pool.map(one, self.pairs))
        problems = [x for x in items if isinstance(x, str)]
        if problems:
            raise DataError(f"{len(problems)} bad image/mask pair(s): {_more(problems)}")
        return items  # type: ignore[return-value]

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image, mask8 = (
            self._cache[index] if self._cache is not None else self._decode(self.pairs[index])
        )
        return image, mask8.astype(np.float32) * (1.0 / 255.0)

    def _normalise(self, image: np.ndarray) -> torch.Tensor:
        x = image.astype(np.float32) * self._scale + self._shift  # [h, w, 3]
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))  # [3, h, w]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        if not 0 <= index < len(self.pairs):
            raise IndexError(f"index {index} out of range for {len(self.pairs)} samples")
        image, mask = self._load(index)
        epoch = self.epoch if self.train else 0

        def rng(stream: int) -> np.random.Generator:
            return np.random.default_rng(sample_seed(self.seed, epoch, index, stream))

        own = image
        if self.scenes is not None:
            image, mask = self.scenes(index, image, mask, rng(STREAM_SCENE))
        if self.compositor is not None:
            always = (image is own and bool(self.replace_background)
                      and self.pairs[index].name.startswith(self.replace_background))
            image = self.compositor(image, mask, rng(STREAM_BACKGROUND), always=always)
        if self.train:
            seed_transform(self.transform, sample_seed(self.seed, epoch, index, STREAM_AUGMENT))
        out = self.transform(image=image, mask=mask)
        image, mask = out["image"], np.clip(out["mask"], 0.0, 1.0)  # [h, w, 3] uint8, [h, w] f32

        item: dict[str, torch.Tensor | str] = {
            "image": self._normalise(image),
            "mask": torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None],
            "name": self.pairs[index].name,
        }
        if self.with_prior:
            item["prior"] = torch.from_numpy(simulate_prior(mask, rng(STREAM_PRIOR)))[None]
        if self.texture is not None:
            seed_transform(self.texture, sample_seed(self.seed, epoch, index, STREAM_TEXTURE))
            item["image2"] = self._normalise(self.texture(image=image)["image"])
        return item
