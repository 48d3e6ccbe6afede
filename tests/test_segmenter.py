"""Segmenter on a tiny exported model: sizes, odd inputs, batches, and no torch import."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segme.io.images import ImageError


def run_fresh_python(code: str) -> None:
    """Run ``code`` in a new interpreter (a clean ``sys.modules``); fail with its stderr."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    import torch

    from segme.export.onnx import export_onnx
    from segme.models import create_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("seg") / "tiny.onnx"
    model = create_model("test_tiny")
    return export_onnx(model, path, model.card(32))


def test_alpha_has_the_image_size(tiny_onnx):
    from segme import Segmenter

    seg = Segmenter.from_file(tiny_onnx, threads=1)
    for h, w in [(32, 32), (45, 100), (300, 17)]:
        alpha = seg(np.zeros((h, w, 3), np.uint8))
        assert alpha.shape == (h, w) and alpha.dtype == np.float32
        assert 0 <= alpha.min() <= alpha.max() <= 1


def test_image_kinds_give_the_same_alpha(tiny_onnx, tmp_path):
    from segme import Segmenter

    seg = Segmenter(tiny_onnx)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    ref = seg(rgb)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    np.testing.assert_allclose(seg(tmp_path / "a.png"), ref)
    np.testing.assert_allclose(seg(str(tmp_path / "a.png")), ref)
    np.testing.assert_allclose(seg(Image.fromarray(rgb)), ref)
    np.testing.assert_allclose(seg(np.dstack([rgb, np.full((40, 50), 7, np.uint8)])), ref)
    np.testing.assert_allclose(seg(rgb.astype(np.float32) / 255), ref, atol=1e-6)
    assert seg(rgb[:, :, 0]).shape == (40, 50)  # grayscale
    assert seg(rgb.astype(np.uint16) * 257).shape == (40, 50)  # 16-bit


def test_batch_matches_single_calls(tiny_onnx):
    from segme import Segmenter

    seg = Segmenter(tiny_onnx)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (h, 30, 3), dtype=np.uint8) for h in (20, 64, 33)]
    out = seg.batch(images, batch_size=2)
    for a, img in zip(out, images):
        np.testing.assert_allclose(a, seg(img), atol=1e-5)


def test_upsample_mode_reaches_images_batches_and_streams(tiny_onnx):
    from segme import Segmenter
    from segme.postprocess import restore
    from segme.preprocess import prepare

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    guided, bilinear = (Segmenter(tiny_onnx, upsample=m) for m in ("guided", "bilinear"))
    default = Segmenter(tiny_onnx)  # guided for images, bilinear for streams (real time)
    assert (default.upsample, default.stream_upsample) == ("guided", "bilinear")
    x, meta = prepare(img, guided.card)
    low = guided.backend.run(x)
    np.testing.assert_allclose(bilinear(img), restore(low, meta), atol=1e-6)
    np.testing.assert_allclose(guided(img), restore(low, meta, guide=img), atol=1e-6)
    assert not np.allclose(guided(img), bilinear(img), atol=1e-3)
    for seg in (guided, bilinear):
        np.testing.assert_allclose(seg.batch([img, img[:40]])[1], seg(img[:40]), atol=1e-5)
        streamed = list(seg.stream([img, img], temporal="none", cut_threshold=None))
        np.testing.assert_allclose(streamed[1], seg(img), atol=1e-6)
    np.testing.assert_allclose(default(img), guided(img), atol=1e-6)
    streamed = list(default.stream([img], temporal="none", cut_threshold=None))
    np.testing.assert_allclose(streamed[0], bilinear(img), atol=1e-6)
    with pytest.raises(ValueError, match="upsample must be guided or bilinear, got 'cubic'"):
        Segmenter(tiny_onnx, upsample="cubic")


def test_bgr_arrays_with_channels_bgr_give_the_rgb_alphas(tmp_path):
    from segme import Segmenter
    from segme.data.synthetic import synthetic_pair

    rgb, _ = synthetic_pair(np.random.default_rng(4), 120, 96)  # a coloured portrait
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    seg, seg_bgr = Segmenter(threads=1), Segmenter(threads=1, channels="bgr")  # shipped model
    ref = seg(rgb)
    np.testing.assert_array_equal(seg_bgr(bgr), ref)
    np.testing.assert_array_equal(seg_bgr(np.dstack([bgr, bgr[:, :, :1]])), ref)  # BGRA
    np.testing.assert_array_equal(seg_bgr(tmp_path / "photo.png"), ref)  # files stay RGB
    np.testing.assert_array_equal(seg_bgr(Image.fromarray(rgb)), ref)  # so do PIL images
    assert np.abs(seg(bgr) - ref).max() > 1e-3  # the flag matters: BGR read as RGB differs
    for a, b in zip(seg_bgr.batch([bgr, bgr[:60]]), seg.batch([rgb, rgb[:60]]), strict=True):
        np.testing.assert_array_equal(a, b)
    streamed = list(seg.stream([rgb, rgb], temporal="ema"))
    np.testing.assert_array_equal(list(seg_bgr.stream([bgr, bgr], temporal="ema")), streamed)
    st = seg_bgr.streamer(temporal="ema")
    pairs = st.push(bgr) + st.push(bgr) + st.flush()
    assert all(frame is bgr for frame, _ in pairs)  # frames come back as pushed
    np.testing.assert_array_equal([a for _, a in pairs], streamed)
    with pytest.raises(ValueError, match="channels must be 'rgb' or 'bgr'.*got 'BGR'"):
        Segmenter(channels="BGR")


def test_built_in_models_open_by_name():
    from segme import Segmenter
    from segme.runtime import resolve_model
    from segme.segmenter import DEFAULT_MODEL

    assert resolve_model(DEFAULT_MODEL.stem) == DEFAULT_MODEL
    assert Segmenter(DEFAULT_MODEL.stem).card == Segmenter().card
    assert resolve_model("some/dir/model.onnx") == Path("some/dir/model.onnx")  # paths stay
    with pytest.raises(FileNotFoundError, match="built-in: .*" + DEFAULT_MODEL.stem):
        resolve_model("no-such-model")


def test_tta_is_the_mean_of_its_passes(tiny_onnx, tmp_path):
    from segme import Segmenter
    from segme.export.weights import save_weights
    from segme.models import create_model

    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    onnx = Segmenter(tiny_onnx)
    flip = Segmenter(tiny_onnx, tta="flip")(img)
    np.testing.assert_allclose(flip, (onnx(img) + onnx(img[:, ::-1])[:, ::-1]) / 2, atol=1e-6)
    assert not np.allclose(flip, onnx(img), atol=1e-4)  # the mirrored pass counts
    with pytest.raises(ValueError, match="only takes 32x32"):
        Segmenter(tiny_onnx, tta="flip,64")  # a fixed-size file cannot run other sizes

    model = create_model("test_tiny")
    weights = save_weights(model, model.card(32), tmp_path / "tiny.safetensors")
    base = Segmenter(weights)
    multi = Segmenter(weights, tta="32,64")(img)
    big = Segmenter(weights, tta="64")(img)
    np.testing.assert_allclose(multi, (base(img) + big) / 2, atol=1e-6)
    assert not np.allclose(big, base(img), atol=1e-4)  # 64 really ran at 64
    assert [a.shape for a in Segmenter(weights, tta="flip,64").batch([img, img[:9]])] == [
        (40, 50), (9, 50)]
    with pytest.raises(ValueError, match="multiple of the model's size divisor"):
        Segmenter(weights, tta="50")
    for bad in ("flop", "0", "flip,,"):
        with pytest.raises(ValueError, match="--tta takes"):
            Segmenter(weights, tta=bad)


def test_bad_inputs_raise_clear_errors(tiny_onnx, tmp_path):
    from segme import Segmenter

    seg = Segmenter(tiny_onnx)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match=r"cannot read .*empty.jpg: it is empty \(0 bytes\)"):
        seg(tmp_path / "empty.jpg")
    with pytest.raises(ImageError, match="file not found"):
        seg(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="expected an image array"):
        seg(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ImageError, match=r"transpose\(1, 2, 0\)"):
        seg(np.zeros((3, 20, 30), np.uint8))  # a torch-style CHW array
    with pytest.raises(ImageError, match="got None"):
        seg(None)
    with pytest.raises(ImageError, match="a path, a PIL image or an image array, got int"):
        seg(42)
    with pytest.raises(ImageError, match=r"\[0, 1\]"):
        seg(np.full((4, 4, 3), 2.0, np.float32))
    with pytest.raises(FileNotFoundError):
        Segmenter(tmp_path / "nope.onnx")
    with pytest.raises(ValueError, match="unknown model file type"):
        Segmenter(tmp_path / "model.bin")


def test_inference_path_never_imports_torch(tiny_onnx):
    code = (
        "import sys, numpy as np, segme\n"
        "from segme import Segmenter\n"
        f"a = Segmenter({str(tiny_onnx)!r})(np.zeros((20, 30, 3), np.uint8))\n"
        "assert a.shape == (20, 30)\n"
        "import segme.effects, segme.io.images, segme.io.sources, segme.io.video\n"
        "import segme.io.camera, segme.io.files, segme.preprocess, segme.postprocess\n"
        "import segme.runtime, segme.runtime.onnx, segme.runtime.litert, segme.cli.main\n"
        "import segme.evaluate.metrics, segme.evaluate.run, segme.data.folders\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    run_fresh_python(code)


def test_default_segmenter_is_the_shipped_224_model():
    from segme import Segmenter
    from segme.data.synthetic import synthetic_pair
    from segme.segmenter import DEFAULT_MODEL

    seg, named = Segmenter(), Segmenter("mnv3-unet-portraits-224")
    assert DEFAULT_MODEL.name == "mnv3-unet-portraits-224.onnx"
    assert seg.card == named.card and seg.card.input_size == (224, 224)
    image, _ = synthetic_pair(np.random.default_rng(3), 120, 90)
    alpha = seg(image)
    assert alpha.shape == (120, 90) and np.array_equal(alpha, named(image))


def test_built_in_cards_carry_the_numbers_their_model_cards_publish():
    """The scores inside each shipped file (measured when it was made, and re-measured on the
    real data by the next test) are the ones src/segme/weights/README.md gives users."""
    from segme.runtime import WEIGHTS, load_backend

    readme = (WEIGHTS / "README.md").read_text()
    for path in sorted(WEIGHTS.glob("*.onnx")):
        m = load_backend(path).card.metrics
        line = (f"**{m['fg_iou']:.2f}** fg-IoU (pfcn {m['pfcn_fg_iou']:.2f}, picsart "
                f"{m['picsart_fg_iou']:.2f}, ccp {m['ccp_fg_iou']:.2f}), boundary IoU "
                f"{m['boundary_iou']:.1f}")
        assert line in readme, (path.name, line)


def test_built_in_models_score_what_their_cards_say_on_the_real_portraits():
    from segme.evaluate.run import evaluate
    from segme.runtime import WEIGHTS, load_backend
    from tests.conftest import shared_data

    val = shared_data("portraits", "val")
    files = sorted(WEIGHTS.glob("*.onnx"))
    assert len(files) >= 2  # the default and the lite model
    for path in files:
        backend = load_backend(path, threads=1)
        card = backend.card
        res = evaluate(backend, val, progress=False)
        for key, measured in (("fg_iou", res["all"]["fg_iou"]),
                              ("boundary_iou", res["all"]["boundary_iou"]),
                              *((f"{s}_fg_iou", res[s]["fg_iou"])
                                for s in ("pfcn", "picsart", "ccp"))):
            assert abs(measured - card.metrics[key]) < 0.01, (path.name, key, measured)


def test_models_never_import_train_serve_or_cli():
    code = (
        "import sys, segme.models\n"
        "bad = [m for m in sys.modules if m.startswith(('segme.train', 'segme.serve', "
        "'segme.cli'))]\n"
        "assert not bad, bad\n"
    )
    run_fresh_python(code)
