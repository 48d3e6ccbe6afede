"""Joint image/mask augmentation (albumentations 2.x), background compositing, texture copies.

Determinism: a Compose keeps its own random generators, so the dataset reseeds it before
every call with ``seed_transform(transform, seed)`` where ``seed`` is derived from
(base seed, epoch, sample index). The output of sample i in epoch e therefore depends on
nothing else: not on worker count, worker order or what was drawn before.

Masks are float32 alpha in [0, 1] and are resized bilinearly (albumentations resizes masks
with nearest neighbour by default, which would turn soft or downscaled edges into jagged
steps); bilinear keeps values in [0, 1] because it is a convex combination.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# albumentations 2.x asks PyPI for a newer version on import unless told not to;
# a library must not call the network behind the user's back.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from segme.cards import Size, as_hw  # noqa: E402
from segme.data.folders import IMAGE_SUFFIXES, DataError, load_image  # noqa: E402
from segme.effects import color_transfer  # noqa: E402


@dataclass(frozen=True)
class Strength:
    """One augmentation preset; probabilities are per sample."""

    min_scale: float  # smallest crop area as a fraction of the image: keeps most of the person
    rotate: float  # max rotation in degrees, either way
    color: float  # brightness/contrast limit (fraction); hue/sat/value shifts scale with it
    tone_p: float  # RandomToneCurve ("curve filters" of phone apps)
    blur_p: float  # motion blur: hand shake and moving subjects in video calls
    jpeg_p: float  # compression artefacts of phone photos and webcams
    noise_p: float  # sensor noise of cheap cameras in low light
    gray_p: float  # black-and-white photos and filters


STRENGTHS = {
    "light": Strength(0.7, 8, 0.15, 0.2, 0.05, 0.1, 0.05, 0.02),
    "default": Strength(0.5, 15, 0.25, 0.3, 0.15, 0.25, 0.15, 0.05),
    "strong": Strength(0.35, 20, 0.35, 0.4, 0.25, 0.35, 0.25, 0.1),
}


class RelativeResizedCrop(A.RandomResizedCrop):
    """RandomResizedCrop whose aspect ratio range is relative to the image's own aspect.

    The evaluation protocol squashes the whole image to the model input, so a crop with the
    image's aspect (ratio 1 here) and scale 1 reproduces exactly what the model sees at test
    time; plain RandomResizedCrop uses absolute ratios and would systematically cut the
    sides of landscape photos or the top and bottom of tall ones.
    """

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, tuple[int, int, int, int]]:
        height, width = params["shape"][:2]
        area = height * width
        for _ in range(10):
            target = self.py_random.uniform(self.scale[0] * area, self.scale[1] * area)
            aspect = (width / height) * math.exp(
                self.py_random.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]))
            )
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                y0 = int((height - h) * self.py_random.random())
                x0 = int((width - w) * self.py_random.random())
                return {"crop_coords": (x0, y0, x0 + w, y0 + h)}
        return {"crop_coords": (0, 0, width, height)}


# Independent random streams of one sample: adding a stream never changes the others.
STREAM_BACKGROUND, STREAM_AUGMENT, STREAM_TEXTURE, STREAM_PRIOR, STREAM_SCENE = range(5)


def sample_seed(seed: int, epoch: int, index: int, stream: int) -> int:
    """Seed for one random stream of sample ``index`` in ``epoch``: a 32-bit int.

    SeedSequence hashes the tuple, so nearby tuples (index 7 and 8) give unrelated streams.
    """
    return int(np.random.SeedSequence([seed, epoch, index, stream]).generate_state(1)[0])


def seed_transform(transform: A.BaseCompose, seed: int) -> None:
    """Make the next call of ``transform`` a pure function of ``seed``.

    ``Compose.set_random_seed`` would give every child transform its own generator seeded
    with the same value, so their first draws coincide (flip and grayscale would fire
    together). One shared pair of generators, handed to all children, avoids that.
    Not thread-safe: use one transform per thread (DataLoader workers are processes).
    """
    transform.set_random_state(np.random.default_rng(seed), random.Random(seed))


def _hue_saturation(s: Strength, p: float) -> A.HueSaturationValue:
    """Hue / saturation / value shifts that scale with the preset's colour strength."""
    return A.HueSaturationValue(
        hue_shift_limit=round(40 * s.color),
        sat_shift_limit=round(100 * s.color),
        val_shift_limit=round(60 * s.color),
        p=p,
    )


def build_train_transform(
    size: Size, strength: str = "default", min_scale: float | None = None
) -> A.Compose:
    """Geometric + photometric training augmentation, applied jointly to image and mask.

    Call as ``t(image=uint8 [H, W, 3] RGB, mask=float32 [H, W] in [0, 1])``; returns image
    uint8 [h, w, 3] and mask float32 [h, w] in [0, 1] with (h, w) = ``size``.

    Rotation happens first, at the cached resolution, with reflected borders: the mask is
    reflected with the image so labels stay right, and there are no black wedges that never
    occur at test time. Then a crop keeping at least ``min_scale`` of the area, a flip and
    colour/blur/compression changes.

    Args:
        size: model input, int (square) or (height, width).
        strength: "light", "default" or "strong" (see ``STRENGTHS``).
        min_scale: smallest crop area fraction; overrides the preset.

    Raises:
        ValueError: unknown strength or min_scale outside (0, 1].
    """
    if strength not in STRENGTHS:
        raise ValueError(
            f"unknown augmentation strength {strength!r}; choose from {list(STRENGTHS)}"
        )
    s = STRENGTHS[strength]
    lo = s.min_scale if min_scale is None else float(min_scale)
    if not 0.0 < lo <= 1.0:
        raise ValueError(f"min_scale must be in (0, 1], got {lo}")
    h, w = as_hw(size)
    transforms = [
        A.Rotate(limit=(-s.rotate, s.rotate), border_mode=cv2.BORDER_REFLECT_101, p=0.5),
        RelativeResizedCrop(
            size=(h, w), scale=(lo, 1.0), ratio=(3 / 4, 4 / 3), area_for_downscale="image", p=1.0
        ),
        A.HorizontalFlip(p=0.5),
        A.RandomBrightnessContrast(brightness_limit=s.color, contrast_limit=s.color, p=0.7),
        _hue_saturation(s, p=0.5),
        A.RandomToneCurve(scale=0.15, p=s.tone_p),
        A.MotionBlur(blur_limit=(3, 7), p=s.blur_p),
        A.GaussNoise(std_range=(0.01, 0.05), p=s.noise_p),
        A.ImageCompression(quality_range=(40, 95), p=s.jpeg_p),
        A.ToGray(p=s.gray_p),
    ]
    return A.Compose(transforms, mask_interpolation=cv2.INTER_LINEAR, seed=0)


def build_eval_transform(size: Size) -> A.Compose:
    """Whole image resized to the model input (the evaluation protocol); no randomness.

    Downscaling uses area averaging for the image (as the training crop does) and bilinear
    for the mask. Returns image uint8 [h, w, 3] and mask float32 [h, w] in [0, 1].
    """
    h, w = as_hw(size)
    resize = A.Resize(h, w, interpolation=cv2.INTER_LINEAR, area_for_downscale="image", p=1.0)
    return A.Compose([resize], mask_interpolation=cv2.INTER_LINEAR, seed=0)


def texture_transform(strength: str = "default") -> A.Compose:
    """Photometric-only changes for PortraitNet's consistency loss: no geometry at all.

    Applied to an already augmented crop, it yields a copy with identical geometry (the
    mask stays valid) but different colour, blur and noise. Brightness/contrast always
    fires so the copy always differs.
    """
    if strength not in STRENGTHS:
        raise ValueError(
            f"unknown augmentation strength {strength!r}; choose from {list(STRENGTHS)}"
        )
    s = STRENGTHS[strength]
    return A.Compose(
        [
            A.RandomBrightnessContrast(brightness_limit=s.color, contrast_limit=s.color, p=1.0),
            _hue_saturation(s, p=0.7),
            A.RandomGamma(gamma_limit=(70, 140), p=0.3),
            A.OneOf(
                [A.GaussianBlur(sigma_limit=(0.3, 1.5)), A.MotionBlur(blur_limit=(3, 7))], p=0.3
            ),
            A.GaussNoise(std_range=(0.01, 0.06), p=0.4),
            A.ImageCompression(quality_range=(30, 90), p=0.3),
        ],
        seed=0,
    )


def _fit_short_side(image: np.ndarray, short: int) -> np.ndarray:
    """Downscale (never upscale) so the shorter side is at most ``short`` pixels."""
    h, w = image.shape[:2]
    f = short / min(h, w)
    if f >= 1.0:
        return image
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


class BackgroundCompositor:
    """Paste the person onto a random crop of a random background photo.

    ``out = image * a + background * (1 - a)`` with the soft mask as ``a``; the mask itself
    is unchanged. Used before the geometric augmentation so the pasted result is rotated,
    cropped and recoloured like any photo. This teaches the model to look at the person
    rather than at the few backgrounds of the training set.

    Args:
        folder: folder of background photos (jpg/png/...), decoded once and kept in memory.
        p: probability of compositing a given sample.
        max_side: backgrounds are downscaled so their shorter side is at most this.

    Raises:
        DataError: the folder is missing, empty or holds an unreadable photo.
    """

    def __init__(self, folder: str | Path, p: float = 0.3, max_side: int = 1024) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(f"backgrounds folder {folder} does not exist")
        files = sorted(
            f
            for f in folder.iterdir()
            if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")
        )
        if not files:
            raise DataError(f"no background photos ({' '.join(IMAGE_SUFFIXES)}) in {folder}")
        self.p = float(p)
        self.files = files
        self.backgrounds = [_fit_short_side(load_image(f), max_side) for f in files]

    def __len__(self) -> int:
        return len(self.backgrounds)

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                 always: bool = False) -> np.ndarray:
        """Composite with probability ``p`` (or always).

        Args:
            image: uint8 [H, W, 3] RGB.
            mask: float32 [H, W] in [0, 1], the person's alpha.
            rng: generator for this sample (all draws come from it).
            always: composite whatever ``p`` says (a photo whose own background cannot be
                trusted, e.g. one with bystanders its mask leaves out).

        Returns:
            uint8 [H, W, 3] RGB: the composite, or ``image`` itself when not applied.
        """
        if rng.random() >= self.p and not always:
            return image
        h, w = image.shape[:2]
        return _over(image, mask, self.random_crop(h, w, rng))

    def random_crop(self, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        """A random background, cropped and resized to uint8 [h, w, 3] RGB."""
        bg = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        bh, bw = bg.shape[:2]
        # Largest crop with the wanted aspect, then a random zoom into it (scale 0.4..1).
        cw, ch = (bw, round(bw * h / w)) if bw * h / w <= bh else (round(bh * w / h), bh)
        zoom = math.sqrt(rng.uniform(0.4, 1.0))
        cw, ch = max(1, round(cw * zoom)), max(1, round(ch * zoom))
        x0 = int(rng.integers(0, bw - cw + 1))
        y0 = int(rng.integers(0, bh - ch + 1))
        crop = bg[y0 : y0 + ch, x0 : x0 + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        return _resize(crop, w, h)


def _over(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """``fg * alpha + bg * (1 - alpha)``: uint8 [H, W, 3] images, alpha float32 [H, W]."""
    a = alpha[:, :, None]
    out = fg.astype(np.float32) * a + bg.astype(np.float32) * (1.0 - a)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def free_runs(free: np.ndarray, least: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of True in the 1-D ``free`` at least ``least`` long:
    with ``mask.max(0) < 0.02``, the bands of whole columns with nobody in them."""
    idx = np.flatnonzero(free)
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1) if idx.size else []
    return [(int(r[0]), int(r[-1]) + 1) for r in runs if r.size >= least]


def _resize(a: np.ndarray, w: int, h: int) -> np.ndarray:
    """Area-average when shrinking, bilinear when growing (images and masks alike)."""
    interp = cv2.INTER_AREA if w < a.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(a), (max(1, w), max(1, h)), interpolation=interp)


Loader = Callable[[int], tuple[np.ndarray, np.ndarray]]


class SceneComposer:
    """Make a new training photo out of several: other framings, several people, nobody.

    The portrait sets frame one person, upright and large, in a portrait-shaped photo, so a
    model trained on them alone learns that framing and fails on a landscape webcam frame,
    two people side by side, a person further away, or a room with nobody in it
    (``benchmarks/robustness.py`` measures it). With probability ``p`` a sample becomes:

    * a **collage** (``COLLAGE`` of the time): 2-3 whole training photos side by side at one
      height, each keeping its own background, the outer ones sometimes cut by the frame;
    * a **stage** (``STAGE``): people cut out along their masks and pasted at random
      sizes and places, some partly out of the frame, onto a background photo of a random
      aspect from 3:4 to 16:9; needs backgrounds. A person's height is drawn from
      ``min_height`` to the frame's (log-uniform); 1-3 people, or 1-6 when ``min_height``
      lets them be small (street scenes and groups, where people are a twentieth of the
      frame and many);
    * **nobody** (the rest): a background photo, or a person-free strip of the photo,
      with an empty mask.

    The result has any aspect; the geometric augmentation that follows keeps it, and the
    model sees it squashed to its input as the evaluation protocol does.

    Args:
        load: ``index -> (image uint8 [H, W, 3] RGB, mask float32 [H, W] in [0, 1])``.
        count: number of samples ``load`` accepts.
        height: frame height of collages and stages (the cache's resolution).
        backgrounds: compositor whose photos stages and empty frames use; ``None``: only
            collages and person-free strips.
        p: probability of replacing a sample.
        min_height: smallest pasted person in a stage, as a fraction of the frame's height
            (0.3: people as large as in a portrait; 0.05: distant pedestrians too).
        harmonize: probability that a person pasted into a stage takes on the colours of
            the background around them (``effects.color_transfer``, strength 0.3-0.8), so
            that a colour mismatch does not give the pasted person away.
    """

    COLLAGE, STAGE = 0.4, 0.45
    # people at least this tall (a fraction of the frame) are portrait-sized: a stage of them
    # holds 1-3, drawn uniformly in height; below it, distant people come in crowds (1-6) and
    # their heights are drawn log-uniformly so that every scale is seen as often
    PORTRAIT_HEIGHT = 0.3

    def __init__(self, load: Loader, count: int, height: int,
                 backgrounds: BackgroundCompositor | None = None, p: float = 0.3,
                 min_height: float = PORTRAIT_HEIGHT, harmonize: float = 0.0) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"scenes must be a probability in [0, 1], got {p}")
        if not 0.0 <= harmonize <= 1.0:
            raise ValueError(f"scene harmonize must be a probability in [0, 1], got {harmonize}")
        if not 0.0 < min_height <= 1.0:
            raise ValueError(f"the smallest person must be a fraction of the frame in (0, 1], "
                             f"got {min_height}")
        self.load, self.count, self.height = load, int(count), int(height)
        self.backgrounds, self.p, self.min_height = backgrounds, float(p), float(min_height)
        self.harmonize = float(harmonize)

    def __call__(self, index: int, image: np.ndarray, mask: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``index`` (already loaded as ``image``, ``mask``) or a scene made from it.

        Returns image uint8 [H', W', 3] RGB and mask float32 [H', W'] in [0, 1].
        """
        if rng.random() >= self.p:
            return image, mask
        kind = rng.random()
        if kind < self.COLLAGE:
            return self._collage(image, mask, rng)
        if kind < self.COLLAGE + self.STAGE and self.backgrounds is not None:
            return self._stage(image, mask, rng)
        return self._nobody(image, mask, rng)

    def _others(self, n: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
        return [self.load(int(rng.integers(self.count))) for _ in range(n)]

    def _collage(self, image, mask, rng):
        photos = [(image, mask), *self._others(int(rng.integers(1, 3)), rng)]
        order = rng.permutation(len(photos))
        h = min(self.height, *(im.shape[0] for im, _ in photos))
        images, masks = [], []
        for k, j in enumerate(order):
            im, m = photos[j]
            w = round(im.shape[1] * h / im.shape[0])
            im, m = _resize(im, w, h), _resize(m, w, h)
            # the outer photos lose up to a third on their outer side: people cut by the frame
            cut = int(w * rng.uniform(0.0, 0.33)) if rng.random() < 0.5 else 0
            if k == 0:
                im, m = im[:, cut:], m[:, cut:]
            elif k == len(order) - 1:
                im, m = im[:, : w - cut], m[:, : w - cut]
            images.append(im)
            masks.append(m)
        return np.ascontiguousarray(np.concatenate(images, 1)), np.concatenate(masks, 1)

    def _stage(self, image, mask, rng):
        h = self.height
        w = round(h * math.exp(rng.uniform(math.log(3 / 4), math.log(16 / 9))))
        canvas = self.backgrounds.random_crop(h, w, rng)
        alpha = np.zeros((h, w), np.float32)
        crowd = self.min_height < self.PORTRAIT_HEIGHT
        if crowd:
            n = 1 + int(rng.choice(6, p=[0.3, 0.2, 0.15, 0.15, 0.1, 0.1]))
        else:
            n = 1 + int(rng.choice(3, p=[0.5, 0.3, 0.2]))
        for im, m in [(image, mask), *self._others(n - 1, rng)]:
            ys, xs = np.nonzero(m > 0.5)
            if ys.size == 0:
                continue
            y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
            cut_below = y1 >= m.shape[0] - 1  # a bust: the photo cuts the person at its bottom
            if crowd:
                f = h * math.exp(rng.uniform(math.log(self.min_height), 0.0)) / (y1 - y0)
            else:
                f = h * rng.uniform(self.min_height, 1.0) / (y1 - y0)
            im, m = im[y0:y1, x0:x1], m[y0:y1, x0:x1]
            ph, pw = max(1, round(im.shape[0] * f)), max(1, round(im.shape[1] * f))
            im, m = _resize(im, pw, ph), _resize(m, pw, ph)
            # top-left corner: up to a fifth of the person out of the frame at either side;
            # feet anywhere from the lower half of the frame to a third below it, a bust's
            # cut edge at or below the frame's bottom
            x = int(rng.integers(-pw // 5, max(-pw // 5, w - pw + pw // 5) + 1))
            lo = h - ph if cut_below else max(0, h - ph) // 2
            y = int(rng.integers(lo, max(lo, h - ph + ph // 3) + 1))
            cy0, cy1, cx0, cx1 = max(0, y), min(h, y + ph), max(0, x), min(w, x + pw)
            if cy1 <= cy0 or cx1 <= cx0:
                continue
            part = (slice(cy0 - y, cy1 - y), slice(cx0 - x, cx1 - x))
            region = (slice(cy0, cy1), slice(cx0, cx1))
            person = im[part]
            if self.harmonize and rng.random() < self.harmonize:
                person = color_transfer(person, m[part], canvas[region],
                                        float(rng.uniform(0.3, 0.8)))
            canvas[region] = _over(person, m[part], canvas[region])
            alpha[region] = m[part] + alpha[region] * (1.0 - m[part])
        return canvas, alpha

    def _nobody(self, image, mask, rng):
        h, w = mask.shape
        # a strip of the photo beside the person (columns free of them), else a background
        wide = free_runs(mask.max(0) < 0.02, w // 5)
        if wide and (self.backgrounds is None or rng.random() < 0.5):
            a, b = wide[int(rng.integers(len(wide)))]
            return np.ascontiguousarray(image[:, a:b]), np.zeros((h, b - a), np.float32)
        if self.backgrounds is None:
            return image, mask
        sh = self.height
        sw = round(sh * math.exp(rng.uniform(math.log(3 / 4), math.log(16 / 9))))
        return self.backgrounds.random_crop(sh, sw, rng), np.zeros((sh, sw), np.float32)
