"""is_photograph on synthetic images: no network, no apt."""

import numpy as np
import pytest

from segme.data.wallpapers import is_photograph, photo_stats

H, W = 480, 640


def _pink(rng: np.random.Generator) -> np.ndarray:
    """float [H, W] noise with a photo's 1/f amplitude spectrum, zero mean, unit std."""
    f = np.hypot(np.fft.fftfreq(H)[:, None], np.fft.rfftfreq(W)[None, :])
    f[0, 0] = 1.0
    x = np.fft.irfft2(np.fft.rfft2(rng.standard_normal((H, W))) / f, s=(H, W))
    return (x - x.mean()) / x.std()


def _landscape(seed: int) -> np.ndarray:
    """uint8 [H, W, 3]: a smooth sky over textured ground, with sensor noise everywhere."""
    rng = np.random.default_rng(seed)
    base = _pink(rng)
    ground = np.stack([base + 0.5 * _pink(rng) for _ in range(3)], -1)
    ground = (ground - ground.mean()) / ground.std() * 35 + np.array([90, 110, 60])
    t = np.linspace(0, 1, H)[:, None, None]
    sky = np.array([120, 170, 230]) * (1 - t) + np.array([210, 225, 240]) * t
    img = np.where(np.arange(H)[:, None, None] < int(0.3 * H), sky, ground)
    img = img + rng.normal(0, 1.0, img.shape)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _gradient() -> np.ndarray:
    t = np.linspace(0, 1, W)[None, :, None]
    img = np.array([40, 20, 120]) * (1 - t) + np.array([230, 90, 60]) * t
    return np.broadcast_to(img, (H, W, 3)).round().astype(np.uint8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_textured_landscape_is_a_photograph(seed):
    assert is_photograph(_landscape(seed))


def test_flat_gradient_is_not_a_photograph():
    img = _gradient()
    assert photo_stats(img)["flat"] > 0.5
    assert not is_photograph(img)


def test_gradient_under_film_grain_is_not_a_photograph():
    # grain makes every pixel's gradient large; blurred, the art is flat again
    grain = np.random.default_rng(0).normal(0, 4.0, (H, W, 3))
    img = np.clip(_gradient() + grain, 0, 255).astype(np.uint8)
    assert photo_stats(img)["flat"] < 0.35
    assert not is_photograph(img)


def test_two_colour_logo_is_not_a_photograph():
    img = np.full((H, W, 3), 255, np.uint8)
    yy, xx = np.mgrid[:H, :W]
    img[(yy - H / 2) ** 2 + (xx - W / 2) ** 2 < 100**2] = (20, 60, 160)
    img[H // 2 - 10:H // 2 + 10, 60:W - 60] = (20, 60, 160)
    assert not is_photograph(img)


def test_tiling_is_not_a_photograph():
    tile = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    img = np.tile(tile, (H // 32, W // 32, 1))
    assert photo_stats(img)["repeat"] > 0.95
    assert not is_photograph(img)


def test_rejects_non_rgb_uint8():
    with pytest.raises(ValueError):
        is_photograph(np.zeros((H, W, 3), np.float32))
    with pytest.raises(ValueError):
        is_photograph(np.zeros((H, W), np.uint8))
