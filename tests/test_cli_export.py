"""``segme export`` through the real console script: quantised ONNX and TFLite, each gated
against the float model, and the card carried into every file."""

import pytest

from tests.console import assert_clean_error, needs_cli, run

pytestmark = needs_cli


@pytest.mark.parametrize("kind", ["fp16", "int8"])
def test_quantised_exports_are_gated(trained, tmp_path, kind):
    import numpy as np

    from segme.runtime.onnx import OnnxBackend

    out = tmp_path / f"m-{kind}.onnx"
    proc = run("export", "--model", trained / "run/best.pt", "-o", out, "--quantize", kind,
               "--calibration", trained / "data/train/images", "--val", trained / "data/val")
    assert "max abs alpha difference" in proc.stdout and "fg-IoU on" in proc.stdout
    backend = OnnxBackend(out)
    assert backend.card.arch == "test_tiny"
    x = np.zeros((1, 3, 32, 32), np.float32)
    assert backend.run(x).dtype == np.float32  # float32 in and out, whatever is inside
    # an impossible gate fails, and the file is gone
    failed = run("export", "--model", trained / "run/best.pt", "-o", out, "--quantize", kind,
                 "--calibration", trained / "data/train/images", "--max-diff", "0", ok=False)
    assert_clean_error(failed, "export check failed")
    assert not out.exists()


def test_int8_needs_calibration(trained, tmp_path):
    proc = run("export", "--model", trained / "run/best.pt", "-o", tmp_path / "m.onnx",
               "--quantize", "int8", ok=False)
    assert_clean_error(proc, "needs --calibration")


def test_tflite_export_carries_its_card_and_matches_torch(trained, tmp_path):
    pytest.importorskip("litert_torch", reason="litert-torch (the export extra) is not installed")
    import dataclasses

    import numpy as np
    import torch

    from segme.data.synthetic import synthetic_pair
    from segme.models.loading import load_model
    from segme.preprocess import prepare
    from segme.runtime.litert import LiteRTBackend

    out = tmp_path / "m.tflite"
    run("export", "--model", trained / "run/best.pt", "-o", out)
    backend = LiteRTBackend(out)
    net, card = load_model(trained / "run/best.pt")
    assert backend.card == dataclasses.replace(card, layout="nhwc")  # the whole card travels
    assert list(backend.interpreter.get_input_details()[0]["shape"]) == [1, 32, 32, 3]
    rng = np.random.default_rng(7)
    for _ in range(3):  # the file computes what the network does, on photo-like inputs
        image, _ = synthetic_pair(rng, 40, 48)
        x, _ = prepare(image, card)
        with torch.no_grad():
            expected = net(torch.from_numpy(x)).numpy()
        assert np.abs(backend.run(x) - expected).max() < 1e-4
    res = run("eval", "--model", out, "--data", trained / "data/val")
    assert "synth" in res.stdout


def test_tflite_int8_export_is_gated_and_runs(trained, tmp_path):
    pytest.importorskip("ai_edge_quantizer", reason="the export extra is not installed")
    import numpy as np

    from segme.runtime.litert import LiteRTBackend

    out = tmp_path / "m8.tflite"
    proc = run("export", "--model", trained / "run/best.pt", "-o", out, "--quantize", "int8",
               "--calibration", trained / "data/train/images", "--val", trained / "data/val")
    assert "int8" in proc.stdout and "fg-IoU on" in proc.stdout
    backend = LiteRTBackend(out)
    assert backend.card.arch == "test_tiny"
    alpha = backend.run(np.zeros((1, 3, 32, 32), np.float32))
    assert alpha.dtype == np.float32 and 0 <= alpha.min() <= alpha.max() <= 1
    assert_clean_error(run("export", "--model", trained / "run/best.pt", "-o",
                           tmp_path / "x.tflite", "--quantize", "fp16-weights", ok=False),
                       "not available for .tflite")
