"""OpenVINO backend: IR export with the card in rt_info, parity with ONNX Runtime, and the
choice of runtime by suffix or by name."""

import numpy as np
import pytest
import torch

from segme.export.onnx import export_onnx
from segme.models import create_model
from segme.runtime import load_backend
from segme.runtime.onnx import OnnxBackend

pytest.importorskip("openvino", reason="the openvino extra is not installed")


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("test_tiny").eval()
    return export_onnx(model, tmp_path_factory.mktemp("ov") / "m.onnx", model.card(32))


def test_ir_carries_its_card_and_matches_onnx_runtime(onnx_file, tmp_path):
    from segme.export.openvino import save_ir
    from segme.runtime.openvino import OpenVINOBackend

    ref = OnnxBackend(onnx_file)
    xml = save_ir(onnx_file, tmp_path / "m.xml", ref.card)
    assert xml.with_suffix(".bin").is_file()
    ir = load_backend(xml, threads=1)  # .xml: OpenVINO by suffix
    assert isinstance(ir, OpenVINOBackend) and ir.card == ref.card
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    assert np.abs(ir.run(x) - ref.run(x)).max() < 1e-5
    by_name = load_backend(onnx_file, runtime="openvino")  # .onnx on OpenVINO when asked
    assert isinstance(by_name, OpenVINOBackend) and by_name.card == ref.card
    assert np.abs(by_name.run(x) - ref.run(x)).max() < 1e-5
    half = save_ir(onnx_file, tmp_path / "h.xml", ref.card, fp16_weights=True)
    assert half.with_suffix(".bin").stat().st_size < 0.7 * xml.with_suffix(".bin").stat().st_size
    assert np.abs(load_backend(half).run(x) - ref.run(x)).max() < 1e-2


def test_runtime_choice_errors_say_what_fits(onnx_file, tmp_path):
    from segme.runtime.openvino import OpenVINOBackend

    with pytest.raises(ValueError, match="the litert runtime opens .tflite files"):
        load_backend(onnx_file, runtime="litert")
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'"):
        load_backend(onnx_file, runtime="tensorrt")
    with pytest.raises(ValueError, match="precision must be one of"):
        OpenVINOBackend(onnx_file, precision="int4")
    (tmp_path / "junk.xml").write_text("<net>")
    with pytest.raises(ValueError, match="not a valid OpenVINO or ONNX model"):
        load_backend(tmp_path / "junk.xml")


def test_cli_exports_ir_with_the_parity_gate(trained, tmp_path):
    from tests.console import assert_clean_error, run

    out = tmp_path / "m.xml"
    proc = run("export", "--model", trained / "run/best.pt", "-o", out)
    assert "max abs alpha difference" in proc.stdout and out.with_suffix(".bin").is_file()
    assert load_backend(out).card.arch == "test_tiny"
    eight = tmp_path / "m8.xml"
    run("export", "--model", trained / "run/best.pt", "-o", eight, "--quantize", "int8",
        "--calibration", trained / "data/train/images")
    alpha = load_backend(eight).run(np.zeros((1, 3, 32, 32), np.float32))
    assert alpha.dtype == np.float32 and 0 <= alpha.min() <= alpha.max() <= 1
    failed = run("export", "--model", trained / "run/best.pt", "-o", out, "--max-diff", "0",
                 ok=False)
    assert_clean_error(failed, "export check failed")
    assert not out.exists() and not out.with_suffix(".bin").exists()


def test_photo_verbs_take_runtime(onnx_file, tmp_path):
    from PIL import Image

    from segme.data.synthetic import synthetic_pair
    from tests.console import assert_clean_error, run

    image, _ = synthetic_pair(np.random.default_rng(0), 40, 48)
    Image.fromarray(image).save(tmp_path / "p.png")
    ref, got = tmp_path / "ref.png", tmp_path / "ov.png"
    run("mask", tmp_path / "p.png", "--model", onnx_file, "-o", ref)
    run("mask", tmp_path / "p.png", "--model", onnx_file, "--runtime", "openvino", "-o", got)
    a, b = (np.asarray(Image.open(p), np.int16) for p in (ref, got))
    assert np.abs(a - b).max() <= 1  # the same alpha to 8-bit rounding
    failed = run("mask", tmp_path / "p.png", "--model", onnx_file, "--runtime", "litert",
                 "-o", tmp_path / "x.png", ok=False)
    assert_clean_error(failed, "the litert runtime opens .tflite files")
