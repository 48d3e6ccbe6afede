"""Format conversions on a real family (shared constants, several Resize ops)."""

import numpy as np
import torch

from segme.export.onnx import export_onnx
from segme.export.quantize import to_fp16, to_int8
from segme.models import create_model
from segme.runtime.onnx import OnnxBackend


def test_fp16_and_int8_of_sinet_load_and_stay_close(tmp_path):
    torch.manual_seed(0)
    model = create_model("sinet").eval()
    fp32 = export_onnx(model, tmp_path / "s.onnx", model.card(64))
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((1, 3, 64, 64)).astype(np.float32) for _ in range(4)]
    ref = OnnxBackend(fp32)
    half = OnnxBackend(to_fp16(fp32, tmp_path / "s16.onnx"))
    eight = OnnxBackend(to_int8(fp32, tmp_path / "s8.onnx", xs))
    for b in (half, eight):
        assert b.card.arch == "sinet" and b.card.input_size == (64, 64)
    assert max(np.abs(half.run(x) - ref.run(x)).max() for x in xs) < 1e-2
    assert max(np.abs(eight.run(x) - ref.run(x)).max() for x in xs) < 0.3


def test_tflite_int8_of_mnv3_unet_keeps_a_long_card(tmp_path):
    """ai-edge-quantizer moves a large metadata buffer out of the flatbuffer (offset + size
    from the start of the file); the card must still be found there."""
    import dataclasses

    from segme.export.tflite import export_tflite, tflite_int8
    from segme.runtime.litert import LiteRTBackend, read_card

    torch.manual_seed(0)
    model = create_model("mnv3_unet").eval()
    card = dataclasses.replace(model.card(64), notes="how it was trained. " * 150)
    fp32 = export_tflite(model, tmp_path / "m.tflite", card)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((1, 3, 64, 64)).astype(np.float32) for _ in range(2)]
    eight = tflite_int8(fp32, tmp_path / "m8.tflite", card, xs)
    assert read_card(eight) == card
    assert LiteRTBackend(eight).run(xs[0]).shape == (1, 1, 64, 64)
