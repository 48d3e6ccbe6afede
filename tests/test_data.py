"""Folder layouts, bad pairs, image modes, augmentation determinism, priors, datasets."""


import numpy as np
import pytest
import torch
from PIL import Image

from segme.data import DataError, find_pairs, load_image, load_mask, load_pair
from segme.data.augment import BackgroundCompositor
from segme.data.dataset import SegDataset
from segme.data.prior import simulate_prior
from segme.data.synthetic import make_synthetic_dataset, synthetic_pair
from tests.conftest import shared_data

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def write_pair(root, name, size=(40, 30), image_dir="images", mask_dir="masks", seed=0):
    rng = np.random.default_rng(seed)
    image, mask = synthetic_pair(rng, size[1], size[0])
    (root / image_dir).mkdir(parents=True, exist_ok=True)
    (root / mask_dir).mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(root / image_dir / f"{name}.jpg")
    Image.fromarray((mask * 255).astype(np.uint8)).save(root / mask_dir / f"{name}.png")
    return image, mask


@pytest.mark.parametrize("dirs", [("images", "masks"), ("image", "mask"), ("blurred_image", "mask")])
def test_layouts_are_detected(tmp_path, dirs):
    for i in (2, 0, 1):
        write_pair(tmp_path, f"src_{i}", image_dir=dirs[0], mask_dir=dirs[1])
    pairs = find_pairs(tmp_path)
    assert [p.name for p in pairs] == ["src_0", "src_1", "src_2"]
    assert pairs[0].image.parent.name == dirs[0] and pairs[0].mask.parent.name == dirs[1]


def test_missing_mask_missing_image_and_empty_folders(tmp_path):
    write_pair(tmp_path, "a_1")
    write_pair(tmp_path, "a_2")
    (tmp_path / "masks/a_2.png").unlink()
    with pytest.raises(DataError, match="missing mask for a_2"):
        find_pairs(tmp_path)
    (tmp_path / "images/a_1.jpg").unlink()
    write_pair(tmp_path, "a_2")
    (tmp_path / "images/a_2.jpg").unlink()
    with pytest.raises(DataError, match="mask without image: .*a_1.png"):
        find_pairs(tmp_path)
    for f in (tmp_path / "masks").iterdir():
        f.unlink()
    with pytest.raises(DataError, match="no image/mask pairs"):
        find_pairs(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        find_pairs(tmp_path / "nowhere")
    (tmp_path / "other").mkdir()
    with pytest.raises(DataError, match="expected one of images/ \\+ masks/"):
        find_pairs(tmp_path / "other")


def test_corrupt_truncated_and_mismatched_pairs_are_named(tmp_path):
    write_pair(tmp_path, "ok_1")
    write_pair(tmp_path, "bad_corrupt")
    write_pair(tmp_path, "bad_trunc")
    write_pair(tmp_path, "bad_size")
    (tmp_path / "images/bad_corrupt.jpg").write_bytes(b"this is not a jpeg")
    data = (tmp_path / "images/bad_trunc.jpg").read_bytes()
    (tmp_path / "images/bad_trunc.jpg").write_bytes(data[: len(data) // 2])
    Image.new("L", (7, 9)).save(tmp_path / "masks/bad_size.png")
    pairs = {p.name: p for p in find_pairs(tmp_path)}
    load_pair(pairs["ok_1"])
    with pytest.raises(DataError, match="cannot read .*bad_corrupt.jpg"):
        load_pair(pairs["bad_corrupt"])
    with pytest.raises(DataError, match="cannot read .*bad_trunc.jpg"):
        load_pair(pairs["bad_trunc"])
    with pytest.raises(DataError, match="bad_size: mask size 7x9 differs from image size 40x30"):
        load_pair(pairs["bad_size"])
    # the dataset decodes everything up front and names every bad pair in one message
    with pytest.raises(DataError, match="3 bad image/mask pairs: .*bad_corrupt.*bad_size|3 bad"):
        SegDataset(tmp_path, 32, True, MEAN, STD)


def _save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def test_image_modes_load_as_rgb_uint8(tmp_path):
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:10] = (200, 30, 10)  # top half red
    base = Image.fromarray(rgb)
    cases = {
        "gray.png": base.convert("L"),
        "palette.png": base.convert("P"),
        "rgba.png": base.convert("RGBA"),
        "cmyk.jpg": base.convert("CMYK"),
        "rgb.png": base,
    }
    for name, img in cases.items():
        out = load_image(_save(img, tmp_path / name))
        assert out.dtype == np.uint8 and out.shape == (20, 30, 3), name
        assert out[:10].mean() > out[10:].mean(), name
    sixteen = Image.fromarray((np.arange(600).reshape(20, 30) * 100).astype(np.uint16))
    out = load_image(_save(sixteen, tmp_path / "16bit.png"))
    assert out.dtype == np.uint8 and out.shape == (20, 30, 3) and out.max() > 200


def test_exif_orientation_is_applied(tmp_path):
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:, :5] = 255  # a white stripe on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    path = _save(Image.fromarray(rgb), tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    out = load_image(path)
    assert out.shape == (30, 20, 3)  # portrait after the transpose
    assert out[:5].mean() > 200 and out[-5:].mean() < 50  # the stripe is now at the top


def test_mask_encodings(tmp_path):
    soft = (np.linspace(0, 1, 100).reshape(10, 10) * 255).astype(np.uint8)
    m = load_mask(_save(Image.fromarray(soft), tmp_path / "soft.png"))
    assert m.dtype == np.float32 and m.min() == 0 and m.max() == 1 and 0.4 < m.mean() < 0.6
    onezero = np.zeros((10, 10), np.uint8)
    onezero[2:5] = 1
    assert load_mask(_save(Image.fromarray(onezero), tmp_path / "01.png")).sum() == 30
    sixteen = np.full((10, 10), 65535, np.uint16)
    assert load_mask(_save(Image.fromarray(sixteen), tmp_path / "16.png")).min() == 1.0


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    make_synthetic_dataset(root, n_train=8, n_val=4, size=(48, 64), seed=0)
    return root


def test_synthetic_dataset_masks_match_images(synth):
    pairs = find_pairs(synth / "train")
    assert len(pairs) == 8
    image, mask = load_pair(pairs[0])
    assert image.shape[:2] == mask.shape == (64, 48)  # size is (width, height)
    assert 0.05 < (mask > 0.5).mean() < 0.9


def test_dataset_items(synth):
    ds = SegDataset(synth / "train", 32, True, MEAN, STD, prior=True, consistency=True)
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert item["mask"].shape == (1, 32, 32) and 0 <= item["mask"].min() <= item["mask"].max() <= 1
    assert item["prior"].shape == (1, 32, 32) and 0 <= item["prior"].min() <= item["prior"].max() <= 1
    assert item["image2"].shape == (3, 32, 32) and not torch.equal(item["image"], item["image2"])
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 32, 32) and len(batch["name"]) == 4


def test_augmentation_is_a_function_of_seed_epoch_index(synth):
    ds = SegDataset(synth / "train", 32, True, MEAN, STD, seed=5)
    a, b = ds[3], ds[3]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    assert not torch.equal(ds[3]["image"], ds[4]["image"])
    ds.set_epoch(1)
    assert not torch.equal(ds[3]["image"], a["image"])
    ds.set_epoch(0)
    # worker processes and order do not matter
    serial = [ds[i]["image"] for i in range(8)]
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    parallel = torch.cat([b["image"] for b in loader])
    assert torch.equal(torch.stack(serial), parallel)


def test_validation_is_the_whole_image_resized(synth):
    ds = SegDataset(synth / "val", 32, False, MEAN, STD)
    image, mask = load_pair(ds.pairs[0])
    item = ds[0]
    assert item["mask"].shape == (1, 32, 32)
    # same fraction of person as the full-size truth: nothing cropped away
    assert abs(float(item["mask"].mean()) - float(mask.mean())) < 0.02
    assert torch.equal(ds[0]["image"], item["image"])


def test_priors_are_in_range_and_sometimes_empty():
    mask = np.zeros((64, 64), np.float32)
    mask[16:48, 20:44] = 1
    rng = np.random.default_rng(0)
    priors = [simulate_prior(mask, rng) for _ in range(60)]
    assert all(p.dtype == np.float32 and p.min() >= 0 and p.max() <= 1 for p in priors)
    empty = sum(p.max() == 0 for p in priors)
    assert 1 <= empty <= 30
    moved = [p for p in priors if p.max() > 0]
    assert any(not np.array_equal(p, mask) for p in moved)
    # a prior still overlaps the person: it is a perturbation, not noise
    assert np.mean([((p > 0.5) & (mask > 0.5)).sum() / (mask > 0.5).sum() for p in moved]) > 0.5


def test_background_compositing_keeps_the_person(tmp_path):
    bgdir = tmp_path / "bg"
    bgdir.mkdir()
    Image.fromarray(np.full((50, 80, 3), (0, 0, 255), np.uint8)).save(bgdir / "blue.png")
    comp = BackgroundCompositor(bgdir, p=1.0)
    image = np.full((40, 40, 3), (255, 0, 0), np.uint8)
    mask = np.zeros((40, 40), np.float32)
    mask[10:30, 10:30] = 1
    out = comp(image, mask, np.random.default_rng(0))
    assert (out[20, 20] == (255, 0, 0)).all() and (out[0, 0] == (0, 0, 255)).all()
    with pytest.raises(DataError, match="does not exist"):
        BackgroundCompositor(tmp_path / "none")


def test_real_portraits_pair_up():
    root = shared_data("portraits")
    train = find_pairs(f"{root}/train")
    val = find_pairs(f"{root}/val")
    assert len(train) == 2867 and len(val) == 511
    assert {p.name.split("_")[0] for p in val} == {"pfcn", "picsart", "ccp"}
    image, mask = load_pair(val[0])
    assert image.shape[:2] == mask.shape and set(np.unique(mask)) <= {0.0, 1.0}
