"""Model-size alpha -> image-size alpha: bilinear, and guided (edge-aware) upsampling."""

import numpy as np
import pytest

from segme.postprocess import guided_upsample, restore
from segme.preprocess import Meta


def edge_scene(H=96, W=128, edge=53, scale=4):
    """A photo with a sharp vertical edge at column ``edge`` (person on the left, textured
    a little), its true mask, and a model-size alpha that is a blurry version of it."""
    rng = np.random.default_rng(0)
    image = np.full((H, W, 3), 40, np.uint8)
    image[:, :edge] = 200
    image = np.clip(image + rng.integers(-6, 7, image.shape), 0, 255).astype(np.uint8)
    truth = np.zeros((H, W), np.float32)
    truth[:, :edge] = 1
    h, w = H // scale, W // scale
    x = (np.arange(w) + 0.5) * scale  # low-res pixel centres in image columns
    soft = 1 / (1 + np.exp((x - edge - 3) / 3.0))  # blurry, and 3 px off the true edge
    return image, truth, np.tile(soft, (h, 1)).astype(np.float32)


def test_guided_upsampling_puts_a_blurry_edge_where_the_image_has_it():
    image, truth, low = edge_scene()
    meta = Meta(*truth.shape)
    bilinear, guided = restore(low, meta), restore(low, meta, guide=image)
    assert guided.shape == truth.shape and guided.dtype == np.float32
    assert 0 <= guided.min() and guided.max() <= 1
    assert np.abs(guided - truth).mean() < np.abs(bilinear - truth).mean()
    # thresholded at 0.5, the guided mask's edge is the image's edge (column 53)
    cols = (guided > 0.5).sum(1)
    assert np.all(np.abs(cols - 53) <= 1), cols
    assert abs(int(np.median((bilinear > 0.5).sum(1))) - 53) >= 2  # bilinear is off


def test_guided_upsampling_keeps_flat_alphas_and_flat_images():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    for value in (0.0, 0.3, 1.0):
        flat = guided_upsample(np.full((16, 16), value, np.float32), image)
        np.testing.assert_allclose(flat, value, atol=1e-5)
    # a flat image has no edges to follow: close to plain bilinear
    low = rng.random((16, 16)).astype(np.float32)
    grey = np.full((50, 70, 3), 128, np.uint8)
    smooth = guided_upsample(low, grey)
    assert np.abs(smooth - restore(low, Meta(50, 70))).mean() < 0.2
    assert smooth.std() < low.std()  # its windows average the alpha


@pytest.mark.parametrize("size", [(5, 7), (16, 16), (300, 17), (1, 40)])
def test_guided_upsampling_any_image_size(size):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    out = restore(rng.random((1, 1, 24, 24)).astype(np.float32), Meta(*size), guide=image)
    assert out.shape == size and np.isfinite(out).all() and 0 <= out.min() <= out.max() <= 1


def test_restore_refuses_a_guide_of_another_size():
    with pytest.raises(ValueError, match="guide .* differ in size"):
        restore(np.zeros((8, 8), np.float32), Meta(20, 30), guide=np.zeros((30, 20, 3), np.uint8))


def test_guided_upsampling_leaves_confident_regions_bilinear():
    """Far from the model's uncertain band, a strong image edge (a door frame in the
    background, a stripe on a shirt) must not leak into the alpha: the result is bilinear."""
    image, _, low = edge_scene()
    image[:, 100:] = 255  # a second, strong edge at column 100, where the model says 0
    image[:, 10:14] = 0  # and one inside the person, where it says 1
    meta = Meta(*image.shape[:2])
    guided, bilinear = restore(low, meta, guide=image), restore(low, meta)
    far = np.zeros(image.shape[:2], bool)
    far[:, 88:] = far[:, :20] = True  # low-res columns 22+ and below 5: band + window + feather
    assert low[:, 22:].max() < 0.05 and low[:, :5].min() > 0.95  # confident there
    np.testing.assert_allclose(guided[far], bilinear[far], atol=1e-6)
    assert np.abs(guided - bilinear).max() > 0.1  # and it does act at the model's edge


def test_the_preprocessing_guide_gives_what_a_fresh_one_does():
    """``prepare`` hands its resized image on (``Meta.grey``) so that guided upsampling does
    not shrink the frame a second time; the result is the same up to rounding."""
    from segme.cards import ModelCard
    from segme.preprocess import prepare

    image, _, low = edge_scene(H=96, W=128)
    _, meta = prepare(image, ModelCard(arch="t", input_size=low.shape, size_divisor=8))
    assert meta.grey is not None and meta.grey.shape == low.shape
    carried = restore(low, meta, guide=image)
    fresh = restore(low, Meta(*image.shape[:2]), guide=image)
    np.testing.assert_allclose(carried, fresh, atol=0.02)
    assert meta == Meta(*image.shape[:2])  # the guide is not part of a Meta's identity
