import numpy as np
import pytest

from segme import effects
from segme.data.synthetic import synthetic_pair


@pytest.fixture
def scene():
    image, mask = synthetic_pair(np.random.default_rng(0), 80, 60)
    return image, mask.astype(np.float32)


def test_cutout_carries_alpha(scene):
    image, alpha = scene
    out = effects.cutout(image, alpha)
    assert out.shape == (80, 60, 4) and out.dtype == np.uint8
    assert (out[..., :3] == image).all()
    assert (out[..., 3][alpha == 1] == 255).all() and (out[..., 3][alpha == 0] == 0).all()


@pytest.mark.parametrize("color", ["lime", "#00ff00", "0,255,0", (0, 255, 0)])
def test_replace_with_colour(scene, color):
    image, alpha = scene
    out = effects.replace_background(image, alpha, color)
    assert (out[alpha == 0] == (0, 255, 0)).all()
    assert (out[alpha == 1] == image[alpha == 1]).all()


def test_bad_colour_and_sizes(scene):
    image, alpha = scene
    with pytest.raises(ValueError, match="not a colour"):
        effects.replace_background(image, alpha, "notacolour")
    with pytest.raises(ValueError, match="differ in size"):
        effects.cutout(image, alpha[:10])


@pytest.mark.parametrize("mode", ["fill", "fit"])
def test_replace_with_image(scene, mode):
    image, alpha = scene
    bg = np.zeros((30, 200, 3), np.uint8)
    bg[:, :100] = 255
    out = effects.replace_background(image, alpha, bg, mode=mode)
    assert out.shape == image.shape
    assert (out[alpha == 1] == image[alpha == 1]).all()


def test_blur_keeps_the_person_and_smooths_the_rest(scene):
    image, alpha = scene
    out = effects.blur_background(image, alpha, strength=50)
    assert (out[alpha == 1] == image[alpha == 1]).all()
    bg = alpha == 0
    # the textured background loses high-frequency energy
    lap = lambda im: np.abs(np.diff(im.astype(float), axis=1))[bg[:, 1:]].mean()  # noqa: E731
    assert lap(out) < 0.7 * lap(image)
    assert (effects.blur_background(image, alpha, 0) == image).all()


@pytest.mark.parametrize("strength", [15, 50])
def test_blur_at_reduced_resolution_matches_the_full_resolution_blur(strength):
    """The blur is computed on a frame shrunk by an integer factor; away from the person
    it is the full-resolution normalised blur to within a few grey levels."""
    import cv2

    image, mask = synthetic_pair(np.random.default_rng(1), 360, 640)
    alpha = mask.astype(np.float32)
    sigma = strength / 1000.0 * 360
    wt = 1.0 - alpha
    full = cv2.GaussianBlur(image.astype(np.float32) * wt[..., None], (0, 0), sigma) / \
        np.maximum(cv2.GaussianBlur(wt, (0, 0), sigma), 1e-3)[..., None]
    out = effects.blur_background(image, alpha, strength)
    far = cv2.erode((alpha == 0).astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
    assert far.mean() > 0.2
    assert np.abs(out[far].astype(float) - np.clip(full[far], 0, 255)).mean() < 3.0


def test_solid_colour_and_fitted_background():
    out = effects.solid((7, 5), (1, 2, 3))
    assert out.shape == (7, 5, 3) and out.dtype == np.uint8 and (out == (1, 2, 3)).all()
    assert effects.solid((0, 5), (1, 2, 3)).shape == (0, 5, 3)
    bg = np.zeros((7, 5, 3), np.uint8)
    assert effects.fit_background(bg, (7, 5)) is bg  # already that size: not copied
    assert effects.fit_background(bg, (14, 10)).shape == (14, 10, 3)


def test_smoothstep():
    s = effects.smoothstep(np.array([0.0, 0.3, 0.5, 0.7, 1.0]))
    np.testing.assert_allclose(s, [0, 0, 0.5, 1, 1], atol=1e-6)
    with pytest.raises(ValueError):
        effects.smoothstep(np.zeros(3), 0.8, 0.2)


def test_colour_transfer_and_seamless_clone(scene):
    image, alpha = scene
    bg = np.full((50, 50, 3), (20, 40, 200), np.uint8)
    moved = effects.color_transfer(image, alpha, bg, strength=1.0)
    person = alpha == 1
    assert moved[person][:, 2].mean() > image[person][:, 2].mean()  # bluer
    assert (moved[alpha == 0] == image[alpha == 0]).all()
    assert (effects.color_transfer(image, alpha, bg, strength=0.0) == image).all()
    out = effects.seamless_clone(image, alpha, bg)
    assert out.shape == image.shape
    far = alpha == 0
    assert np.abs(out[far].astype(int) - (20, 40, 200)).mean() < 30
    empty = effects.seamless_clone(image, np.zeros_like(alpha), bg)
    assert (empty == bg[0, 0]).all()


def test_refine_snaps_a_blurry_edge_to_the_image_edge():
    import cv2

    alpha = np.zeros((120, 120), np.float32)
    alpha[30:90, 40:80] = 1
    image = np.where(alpha[:, :, None] > 0.5, 200, 40).astype(np.uint8).repeat(3, 2)
    soft = cv2.GaussianBlur(alpha, (0, 0), 3)  # what an upsampled low-res alpha looks like
    ref = effects.refine(soft, image, radius=8)
    assert ref.shape == alpha.shape and 0 <= ref.min() <= ref.max() <= 1
    # the 0.5 crossing stays where the image edge is, and the transition becomes a step
    np.testing.assert_array_equal(ref >= 0.5, alpha >= 0.5)
    row = 60
    assert ref[row, 39] < 0.3 and ref[row, 40] > 0.7
    transition = lambda a: int(((a > 0.2) & (a < 0.8)).sum())  # noqa: E731
    assert transition(ref) < 0.2 * transition(soft)
