"""segme.data: layouts, error messages, decoding, augmentation determinism, priors, dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segme.data import (
    DataError,
    check_pairs,
    find_pairs,
    load_image,
    load_mask,
    load_pair,
    make_synthetic_dataset,
    simulate_prior,
    synthetic_pair,
)

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "portraits"


def _write_pair(images: Path, masks: Path, name: str, rng: np.random.Generator, hw=(40, 30)):
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    image, mask = synthetic_pair(rng, *hw)
    Image.fromarray(image).save(images / f"{name}.jpg")
    Image.fromarray((mask * 255).round().astype(np.uint8)).save(masks / f"{name}.png")


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("synth"), n_train=6, n_val=3, size=(48, 64)
    )


# ---------------------------------------------------------------- layouts


def test_synthetic_dataset_files_hold_the_returned_masks(synth):
    pairs = find_pairs(synth / "train")
    assert [p.name for p in pairs] == [f"synth_{k:04d}" for k in range(6)]
    assert len(find_pairs(synth / "val")) == 3
    image, mask = load_pair(pairs[0])
    assert image.shape == (64, 48, 3) and image.dtype == np.uint8
    _, expected = synthetic_pair(np.random.default_rng([0, 0, 0]), 64, 48)
    np.testing.assert_array_equal(mask, expected)  # quantised to k/255: PNG stores it exactly
    assert 0.1 < mask.mean() < 0.9


@pytest.mark.parametrize(
    ("image_dir", "mask_dir"),
    [("images", "masks"), ("image", "mask"), ("blurred_image", "mask"), ("original_image", "mask")],
)
def test_layouts_are_detected(tmp_path, image_dir, mask_dir):
    rng = np.random.default_rng(0)
    for name in ("b", "a"):
        _write_pair(tmp_path / image_dir, tmp_path / mask_dir, name, rng)
    pairs = find_pairs(tmp_path)
    assert [p.name for p in pairs] == ["a", "b"]  # sorted
    assert pairs[0].image.parent.name == image_dir and pairs[0].mask.parent.name == mask_dir


def test_p3m_prefers_blurred_images(tmp_path):
    rng = np.random.default_rng(0)
    _write_pair(tmp_path / "original_image", tmp_path / "mask", "p_1", rng)
    _write_pair(tmp_path / "blurred_image", tmp_path / "mask", "p_1", rng)
    assert find_pairs(tmp_path)[0].image.parent.name == "blurred_image"


# ---------------------------------------------------------------- error messages


def test_missing_mask_names_the_file(tmp_path):
    rng = np.random.default_rng(0)
    _write_pair(tmp_path / "images", tmp_path / "masks", "pfcn_0001", rng)
    (tmp_path / "masks" / "pfcn_0001.png").unlink()
    _write_pair(tmp_path / "images", tmp_path / "masks", "pfcn_0002", rng)
    with pytest.raises(
        DataError, match=r"missing mask for pfcn_0001 \(expected .*masks.pfcn_0001\.png\)"
    ):
        find_pairs(tmp_path)


def test_missing_image_names_the_file(tmp_path):
    rng = np.random.default_rng(0)
    _write_pair(tmp_path / "images", tmp_path / "masks", "ccp_0007", rng)
    (tmp_path / "images" / "ccp_0007.jpg").unlink()
    _write_pair(tmp_path / "images", tmp_path / "masks", "ccp_0008", rng)
    with pytest.raises(DataError, match=r"mask without image: .*ccp_0007\.png"):
        find_pairs(tmp_path)


def test_empty_missing_and_unknown_folders(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match="no image/mask pairs"):
        find_pairs(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        find_pairs(tmp_path / "nope")
    (tmp_path / "other" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match=r"expected one of images/ \+ masks/.*found train/"):
        find_pairs(tmp_path / "other")


def test_corrupt_truncated_and_mismatched_pairs(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("bad", "cut", "good", "size"):
        _write_pair(tmp_path / "images", tmp_path / "masks", name, rng, hw=(64, 48))
    (tmp_path / "images" / "bad.jpg").write_bytes(b"this is not a jpeg")
    cut = tmp_path / "images" / "cut.jpg"
    cut.write_bytes(cut.read_bytes()[:300])
    Image.new("L", (10, 10)).save(tmp_path / "masks" / "size.png")
    pairs = {p.name: p for p in find_pairs(tmp_path)}  # listing does not decode

    with pytest.raises(DataError, match=r"cannot read .*bad\.jpg"):
        load_pair(pairs["bad"])
    with pytest.raises(DataError, match=r"(?i)cannot read .*cut\.jpg: .*truncated"):
        load_pair(pairs["cut"])
    with pytest.raises(DataError, match=r"^size: mask size 10x10 differs from image size 48x64"):
        load_pair(pairs["size"])
    load_pair(pairs["good"])

    problems = check_pairs(pairs.values(), workers=2)
    assert len(problems) == 3
    assert "bad.jpg" in problems[0] and "cut.jpg" in problems[1] and problems[2].startswith("size:")
    assert len(check_pairs(pairs.values(), workers=1, limit=1)) == 1


def test_dataset_errors_name_the_pair_even_from_a_worker(tmp_path):
    torch = pytest.importorskip("torch")
    from segme.data import SegDataset

    _write_pair(tmp_path / "images", tmp_path / "masks", "broken_01", np.random.default_rng(0))
    (tmp_path / "images" / "broken_01.jpg").write_bytes(b"\xff\xd8 garbage")
    _write_pair(tmp_path / "images", tmp_path / "masks", "broken_02", np.random.default_rng(1))
    (tmp_path / "images" / "broken_02.jpg").write_bytes(b"")
    # cache=True decodes up front: training fails before it starts, naming every bad pair
    with pytest.raises(DataError, match=r"2 bad image/mask pair\(s\): .*broken_01.*broken_02"):
        SegDataset(tmp_path, 32, True, MEAN, STD)
    ds = SegDataset(tmp_path, 32, True, MEAN, STD, cache=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=1)
    batches = iter(loader)
    with pytest.raises(DataError) as info:
        next(batches)
    message = str(info.value)
    del info, batches  # the traceback holds the iterator: free both so the worker stops now
    assert "broken_01.jpg" in message and "\n" not in message and "Traceback" not in message


# ---------------------------------------------------------------- decoding


def test_image_modes_load_as_rgb_uint8(tmp_path):
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:, :15] = (200, 30, 10)
    cases = {
        "gray.png": Image.fromarray(rgb[:, :, 0]),
        "palette.png": Image.fromarray(rgb).convert("P"),
        "rgba.png": Image.fromarray(np.dstack([rgb, np.full((20, 30), 7, np.uint8)])),
        "cmyk.jpg": Image.fromarray(rgb).convert("CMYK"),
        "16bit.png": Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257),
    }
    for name, img in cases.items():
        img.save(tmp_path / name)
        out = load_image(tmp_path / name)
        assert out.shape == (20, 30, 3) and out.dtype == np.uint8, name
        assert out[:, :15, 0].mean() > 150 and out[:, 15:].max() < 30, name
    np.testing.assert_array_equal(load_image(tmp_path / "rgba.png"), rgb)  # alpha dropped
    np.testing.assert_array_equal(load_image(tmp_path / "16bit.png")[:, :, 0], rgb[:, :, 0])


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:10] = 255  # white top half as stored
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display": stored top becomes the right side
    img.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    out = load_image(tmp_path / "phone.jpg")
    assert out.shape == (40, 20, 3)
    assert out[:, 12:].mean() > 200 and out[:, :8].mean() < 50


def test_mask_formats(tmp_path):
    labels = np.zeros((8, 6), np.uint8)
    labels[2:6] = 1
    Image.fromarray(labels).save(tmp_path / "01.png")
    Image.fromarray(labels.astype(np.uint16) * 65535).save(tmp_path / "16.png")
    Image.fromarray(np.dstack([labels * 255] * 3)).save(tmp_path / "rgb.png")
    cutout = np.dstack([np.full((8, 6, 3), 90, np.uint8), labels * 255])
    Image.fromarray(cutout).save(tmp_path / "alpha.png")  # matting cut-out: alpha is the mask
    soft = np.arange(48, dtype=np.uint8).reshape(8, 6) * 5
    Image.fromarray(soft).save(tmp_path / "soft.png")
    for name in ("01.png", "16.png", "rgb.png", "alpha.png"):
        m = load_mask(tmp_path / name)
        assert m.dtype == np.float32 and m.shape == (8, 6), name
        np.testing.assert_array_equal(m, labels.astype(np.float32), err_msg=name)
    np.testing.assert_allclose(load_mask(tmp_path / "soft.png"), soft / 255.0, atol=1e-6)


# ---------------------------------------------------------------- augmentation and priors


def test_augmentation_is_a_function_of_seed():
    from segme.data.augment import build_train_transform, sample_seed, seed_transform

    image, mask = synthetic_pair(np.random.default_rng(1), 80, 60)
    t = build_train_transform(32, strength="strong")

    def run(seed, epoch, index):
        seed_transform(t, sample_seed(seed, epoch, index, 1))
        out = t(image=image, mask=mask)
        return out["image"], out["mask"]

    a = run(0, 3, 5)
    run(0, 3, 6)  # anything drawn in between must not matter
    b = run(0, 3, 5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], run(0, 3, 6)[0])
    assert not np.array_equal(a[0], run(0, 4, 5)[0])
    assert a[1].dtype == np.float32 and 0.0 <= a[1].min() and a[1].max() <= 1.0
    assert len(np.unique(a[1])) > 2  # masks resized bilinearly, not nearest


def test_background_compositor_keeps_person_and_mask(tmp_path):
    from segme.data import BackgroundCompositor

    (tmp_path / "bg").mkdir()
    Image.new("RGB", (50, 30), (0, 255, 0)).save(tmp_path / "bg" / "green.jpg")
    image, mask = synthetic_pair(np.random.default_rng(2), 40, 30)
    mask_before = mask.copy()
    out = BackgroundCompositor(tmp_path / "bg", p=1.0)(image, mask, np.random.default_rng(0))
    np.testing.assert_array_equal(mask, mask_before)
    np.testing.assert_array_equal(out[mask == 1], image[mask == 1])
    assert out[mask == 0][:, 1].mean() > 240  # green background everywhere else
    untouched = BackgroundCompositor(tmp_path / "bg", p=0.0)(image, mask, np.random.default_rng(0))
    assert untouched is image


def _red_person(h: int, w: int, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A blue photo with a red box for the person and its exact mask: colour tells the truth."""
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 2] = 200
    mask = np.zeros((h, w), np.float32)
    y0, y1, x0, x1 = box
    image[y0:y1, x0:x1] = (255, 0, 0)
    mask[y0:y1, x0:x1] = 1.0
    return image, mask


@pytest.fixture
def scene_parts(tmp_path):
    from segme.data import BackgroundCompositor

    (tmp_path / "bg").mkdir()
    Image.new("RGB", (90, 60), (0, 255, 0)).save(tmp_path / "bg" / "green.png")
    photos = [_red_person(80, 60, (10, 70, 15, 45)),  # whole person with room around
              _red_person(64, 48, (20, 64, 8, 40)),  # a bust, cut by the bottom edge
              _red_person(70, 40, (5, 60, 0, 12))]  # a person at the side, a free strip beside
    return photos, BackgroundCompositor(tmp_path / "bg", p=0.0)


def _composer(photos, backgrounds, kind: str | None = None):
    from segme.data import SceneComposer

    composer = SceneComposer(lambda i: photos[i], len(photos), 72, backgrounds, p=1.0)
    if kind is not None:  # only one kind of scene
        composer.COLLAGE, composer.STAGE = {"collage": (1.0, 0.0), "stage": (0.0, 1.0),
                                            "nobody": (0.0, 0.0)}[kind]
    return composer


@pytest.mark.parametrize("kind", ["collage", "stage", "nobody", None])
def test_scenes_keep_the_mask_on_the_person(scene_parts, kind):
    photos, backgrounds = scene_parts
    composer = _composer(photos, backgrounds, kind)
    for seed in range(25):
        image, mask = composer(seed % 3, *photos[seed % 3], np.random.default_rng(seed))
        assert image.dtype == np.uint8 and mask.dtype == np.float32
        assert image.shape[:2] == mask.shape and 0.0 <= mask.min() and mask.max() <= 1.0
        red = (image[..., 0] > 200) & (image[..., 1] < 50) & (image[..., 2] < 50)
        assert red[mask > 0.99].all(), seed  # the mask is on the person...
        assert not red[mask < 0.01].any(), seed  # ...and nowhere else
        if kind == "collage":
            assert 64 <= mask.shape[0] <= 72 and mask.any()  # the lowest photo's height, capped
            assert mask.shape[1] > 60  # two or three photos side by side
        if kind == "stage":
            assert mask.shape[0] == 72 and 3 / 4 - 0.02 <= mask.shape[1] / 72 <= 16 / 9 + 0.02
            assert mask.any() and (image[..., 1] > 200).any()  # people on the green photo
        if kind == "nobody":
            assert not mask.any() and not red.any()


def test_small_people_scenes_paste_distant_people_and_groups(scene_parts):
    import cv2

    photos, backgrounds = scene_parts
    composer = _composer(photos, backgrounds, "stage")
    composer.height = 400  # room for a person a twentieth of the frame
    heights, counts = [], []
    for seed in range(60):
        for small in (0.05, 0.3):
            composer.min_height = small
            _, mask = composer(seed % 3, *photos[seed % 3], np.random.default_rng(seed))
            rows = np.flatnonzero((mask > 0.5).any(1))
            if small == 0.05 and rows.size:
                heights.append(rows.size / mask.shape[0])
            n = cv2.connectedComponents((mask > 0.5).astype(np.uint8))[0] - 1
            counts.append((small, n))
    assert min(heights) < 0.15  # people far smaller than the portrait sets' ever are
    assert max(n for s, n in counts if s == 0.05) > max(n for s, n in counts if s == 0.3)
    with pytest.raises(ValueError, match="fraction of the frame"):
        from segme.data import SceneComposer

        SceneComposer(lambda i: photos[i], 3, 72, backgrounds, min_height=0.0)


def test_stage_harmonize_moves_pasted_people_towards_the_background(scene_parts):
    photos, backgrounds = scene_parts  # red people, a green background photo
    greens = {}
    for harmonize in (0.0, 1.0):
        composer = _composer(photos, backgrounds, "stage")
        composer.harmonize = harmonize
        g = []
        for seed in range(10):
            image, mask = composer(seed % 3, *photos[seed % 3], np.random.default_rng(seed))
            g.append(image[..., 1][mask > 0.99].mean())
        greens[harmonize] = np.mean(g)
    assert greens[0.0] < 50 < greens[1.0]  # as pasted; taking on the green around them
    with pytest.raises(ValueError, match="harmonize"):
        from segme.data import SceneComposer

        SceneComposer(lambda i: photos[i], 3, 72, backgrounds, harmonize=1.5)


def test_removing_the_person_keeps_the_rest_of_the_photo():
    from segme.data.backgrounds import remove_person

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    image[30:100, 30:60] = (255, 0, 0)  # the person
    mask = np.zeros((120, 90), np.float32)
    mask[30:100, 30:60] = 1.0
    out = remove_person(image, mask)
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, :5], image[:, :5])  # far from the person: as it was
    red = (out[..., 0] > 200) & (out[..., 1] < 60) & (out[..., 2] < 60)
    assert red[40:90, 38:52].mean() < 0.05  # the person is gone


def test_scenes_are_a_function_of_the_generator(scene_parts):
    photos, backgrounds = scene_parts
    composer = _composer(photos, backgrounds)
    outs = [composer(0, *photos[0], np.random.default_rng(s)) for s in (4, 4, 5)]
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    assert outs[0][0].shape != outs[2][0].shape or not np.array_equal(outs[0][0], outs[2][0])
    never = _composer(photos, backgrounds)
    never.p = 0.0
    image, mask = photos[0]
    out = never(0, image, mask, np.random.default_rng(0))
    assert out[0] is image and out[1] is mask


def test_scenes_without_backgrounds_make_collages_and_strips(scene_parts):
    photos, _ = scene_parts
    composer = _composer(photos, None)
    for seed in range(30):
        image, mask = composer(2, *photos[2], np.random.default_rng(seed))
        assert not (image[..., 1] > 200).any()  # no background photo to draw on
        red = image[..., 0] > 200
        assert not red[mask < 0.01].any()


def test_dataset_with_scenes(synth, tmp_path):
    torch = pytest.importorskip("torch")
    from segme.data import SegDataset

    (tmp_path / "bg").mkdir()
    Image.new("RGB", (90, 60), (0, 255, 0)).save(tmp_path / "bg" / "green.png")
    ds = SegDataset(synth / "train", 32, True, MEAN, STD, backgrounds=tmp_path / "bg",
                    bg_prob=0.0, scenes=1.0)
    items = [ds[i] for i in range(len(ds))]
    assert all(it["image"].shape == (3, 32, 32) and it["mask"].shape == (1, 32, 32)
               for it in items)
    assert torch.equal(items[2]["image"], ds[2]["image"])  # still a function of the index
    with pytest.raises(ValueError, match="scenes"):
        SegDataset(synth / "train", 32, True, MEAN, STD, scenes=1.5)


def test_sources_with_bystanders_always_get_a_new_background(synth, tmp_path):
    pytest.importorskip("torch")
    from segme.data import SegDataset

    (tmp_path / "bg").mkdir()
    Image.new("RGB", (90, 60), (0, 255, 0)).save(tmp_path / "bg" / "green.png")

    def background_green(ds) -> float:
        """Share of background pixels that are the green photo's, over the set."""
        share = []
        for i in range(len(ds)):
            item = ds[i]
            rgb = item["image"].numpy() * np.asarray(STD)[:, None, None] + np.asarray(MEAN)[:, None, None]
            bg = item["mask"][0].numpy() < 0.01
            green = (rgb[1] > rgb[0] + 0.3) & (rgb[1] > rgb[2] + 0.3)  # after colour jitter
            share.append(green[bg].mean())
        return float(np.mean(share))

    kwargs = dict(backgrounds=tmp_path / "bg", bg_prob=0.0, strength="light")
    ds = SegDataset(synth / "train", 32, True, MEAN, STD, replace_background=["synth"], **kwargs)
    assert background_green(ds) > 0.9  # every photo of that source put onto the green one
    other = SegDataset(synth / "train", 32, True, MEAN, STD, replace_background=["ccp"], **kwargs)
    assert background_green(other) < 0.05  # other sources keep their own (bg_prob 0)
    with pytest.raises(ValueError, match="needs background photos"):
        SegDataset(synth / "train", 32, True, MEAN, STD, replace_background=["synth"])


def test_prior_range_and_empty_priors():
    _, mask = synthetic_pair(np.random.default_rng(3), 48, 36)
    priors = [simulate_prior(mask, np.random.default_rng(k)) for k in range(60)]
    assert all(p.dtype == np.float32 and p.shape == mask.shape for p in priors)
    assert all(0.0 <= p.min() and p.max() <= 1.0 for p in priors)
    empty = sum(not p.any() for p in priors)
    assert 1 <= empty <= 25
    moved = [p for p in priors if p.any()]
    assert all(not np.allclose(p, mask) for p in moved)
    # a perturbation of the person, not noise: most of the person is still covered
    cover = [((p > 0.5) & (mask > 0.5)).sum() / (mask > 0.5).sum() for p in moved]
    assert np.mean(cover) > 0.5
    np.testing.assert_array_equal(
        simulate_prior(mask, np.random.default_rng(7)),
        simulate_prior(mask, np.random.default_rng(7)),
    )


# ---------------------------------------------------------------- dataset


def test_dataset_items_shapes_ranges_and_collate(synth):
    torch = pytest.importorskip("torch")
    from segme.data import SegDataset

    ds = SegDataset(synth / "train", (32, 24), True, MEAN, STD, prior=True, consistency=True)
    item = ds[0]
    assert set(item) == {"image", "mask", "name", "prior", "image2"}
    assert item["image"].shape == (3, 32, 24) and item["image"].dtype == torch.float32
    assert item["image2"].shape == (3, 32, 24)
    for key in ("mask", "prior"):
        assert item[key].shape == (1, 32, 24) and item[key].dtype == torch.float32
        assert 0.0 <= item[key].min() and item[key].max() <= 1.0
    lo = (0 - np.array(MEAN)) / np.array(STD)
    hi = (1 - np.array(MEAN)) / np.array(STD)
    assert item["image"].min() >= lo.min() - 1e-4 and item["image"].max() <= hi.max() + 1e-4
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 32, 24) and len(batch["name"]) == 4

    val = SegDataset(synth / "val", 32, False, MEAN, STD, prior=True, consistency=True)
    assert set(val[0]) == {"image", "mask", "name", "prior"}  # no texture copy in eval
    a = val[1]
    val.set_epoch(5)
    b = val[1]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["prior"], b["prior"])


def test_dataset_samples_depend_only_on_seed_epoch_index(synth):
    torch = pytest.importorskip("torch")
    from segme.data import SegDataset

    def make(**kw):
        return SegDataset(synth / "train", 32, True, MEAN, STD, seed=3, prior=True, **kw)

    a, b = make(), make(cache=False)
    a.set_epoch(2)
    b.set_epoch(2)
    first = a[4]
    for i in (5, 0, 3):  # other samples in between, as another worker order would give
        b[i]
    again = b[4]
    for key in ("image", "mask", "prior"):
        assert torch.equal(first[key], again[key]), key
    assert not torch.equal(first["image"], a[3]["image"])
    b.set_epoch(3)
    assert not torch.equal(first["image"], b[4]["image"])

    # worker processes and their order do not matter
    serial = torch.stack([a[i]["image"] for i in range(len(a))])
    loader = torch.utils.data.DataLoader(a, batch_size=2, num_workers=2)
    assert torch.equal(serial, torch.cat([batch["image"] for batch in loader]))


def test_validation_is_the_whole_image_resized(synth):
    pytest.importorskip("torch")
    from segme.data import SegDataset

    ds = SegDataset(synth / "val", 32, False, MEAN, STD)
    _, mask = load_pair(ds.pairs[0])
    # the same fraction of person as the full-size truth: nothing cropped away
    assert abs(float(ds[0]["mask"].mean()) - float(mask.mean())) < 0.02


def test_consistency_copy_has_same_geometry_other_colours(synth):
    torch = pytest.importorskip("torch")
    from segme.data import SegDataset

    plain = SegDataset(synth / "train", 32, True, MEAN, STD, seed=1)
    pair = SegDataset(synth / "train", 32, True, MEAN, STD, seed=1, consistency=True)
    for i in range(3):
        p, q = plain[i], pair[i]
        assert torch.equal(p["mask"], q["mask"]) and torch.equal(p["image"], q["image"])
        assert not torch.allclose(q["image"], q["image2"], atol=1e-3)


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data not available")
def test_real_portraits_load():
    torch = pytest.importorskip("torch")
    from segme.data import SegDataset

    assert len(find_pairs(REAL / "train")) == 2867
    pairs = find_pairs(REAL / "val")
    assert len(pairs) == 511 and {p.name.split("_")[0] for p in pairs} == {"pfcn", "picsart", "ccp"}
    image, mask = load_pair(pairs[0])
    assert image.shape[:2] == mask.shape and set(np.unique(mask)) <= {0.0, 1.0}
    ds = SegDataset(pairs[:4], 64, True, MEAN, STD, prior=True)
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["prior"].dtype == torch.float32
