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


def test_render_is_each_verb_of_the_library(scene):
    """The one effect step of the CLI, the server and (mirrored) the page."""
    image, alpha = scene
    bg = np.full((30, 20, 3), (10, 20, 200), np.uint8)
    np.testing.assert_array_equal(effects.render("mask", image, alpha), effects.mask8(alpha))
    np.testing.assert_array_equal(effects.render("mask", None, alpha), effects.mask8(alpha))
    np.testing.assert_array_equal(effects.render("cutout", image, alpha),
                                  effects.cutout(image, alpha))
    np.testing.assert_array_equal(effects.render("blur", image, alpha, strength=40),
                                  effects.blur_background(image, alpha, 40))
    np.testing.assert_array_equal(effects.render("replace", image, alpha),
                                  effects.replace_background(image, alpha,
                                                             effects.DEFAULT_BACKGROUND))
    np.testing.assert_array_equal(
        effects.render("replace", image, alpha, background=bg, fit="fit", harmonize=0.5),
        effects.replace_background(effects.color_transfer(image, alpha, bg, 0.5), alpha, bg,
                                   "fit"))
    # harmonize moves the person towards a photo, never towards a plain colour
    np.testing.assert_array_equal(effects.render("replace", image, alpha, background="navy",
                                                 harmonize=1.0),
                                  effects.replace_background(image, alpha, "navy"))
    soft = effects.smoothstep(alpha, 0.2, 0.8)
    np.testing.assert_array_equal(effects.render("cutout", image, alpha, edge=0.2),
                                  effects.cutout(image, soft))
    with pytest.raises(ValueError, match="verb must be one of mask, cutout, replace, blur"):
        effects.render("sepia", image, alpha)


def test_render_takes_an_8_bit_mask(scene):
    """A uint8 mask (the server's full-size alpha of a large photo) is used as it is by mask
    and cutout, and read as alpha / 255 by the others."""
    image, alpha = scene
    mask = effects.mask8(alpha * 0.6)
    assert effects.render("mask", None, mask) is mask
    np.testing.assert_array_equal(effects.render("cutout", image, mask)[..., 3], mask)
    as_float = mask.astype(np.float32) / 255
    for verb in ("replace", "blur"):
        np.testing.assert_array_equal(effects.render(verb, image, mask),
                                      effects.render(verb, image, as_float))


def test_render_reads_a_background_photo_by_path(scene, tmp_path, monkeypatch):
    from PIL import Image

    from segme.io.images import ImageError

    image, alpha = scene
    bg = np.random.default_rng(1).integers(0, 256, (50, 90, 3), np.uint8)
    Image.fromarray(bg).save(tmp_path / "beach.png")
    want = effects.render("replace", image, alpha, background=bg, harmonize=0.5)
    assert (effects.render("replace", image, alpha, background=tmp_path / "beach.png",
                           harmonize=0.5) == want).all()
    monkeypatch.chdir(tmp_path)  # a string names a file when one exists, else a colour
    assert (effects.render("replace", image, alpha, background="beach.png",
                           harmonize=0.5) == want).all()
    assert (effects.render("replace", image, alpha, background="lime")[alpha == 0]
            == (0, 255, 0)).all()
    (tmp_path / "broken.jpg").write_bytes(b"not a photo")
    with pytest.raises(ImageError):
        effects.render("replace", image, alpha, background=tmp_path / "broken.jpg")
