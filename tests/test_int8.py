"""INT8 exports that run on the integer kernels, their op counts, and quantisation-aware
training (segme.export.rewrite, segme.export.graph, segme.train.qat)."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn as nn

from segme.cards import ModelCard
from segme.export.graph import format_counts, op_counts
from segme.export.rewrite import integer_friendly
from segme.models import create_model


class HardSwishNet(nn.Module):
    """conv-BN-hardswish twice and a sigmoid: [B, 3, H, W] -> alpha [B, 1, H, W]."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Hardswish(),
                                  nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8),
                                  nn.Hardswish(), nn.Conv2d(8, 1, 1))

    def forward(self, x):
        return torch.sigmoid(self.body(x))


def test_integer_friendly_computes_the_same_and_restores_the_network():
    torch.manual_seed(0)
    model = create_model("mnv3_unet").eval()
    keys = list(model.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        with integer_friendly(model):
            assert not any(isinstance(m, (nn.Hardswish, nn.Hardsigmoid)) for m in model.modules())
            got = model(x)
    assert (got - ref).abs().max() < 1e-5
    assert list(model.state_dict()) == keys
    assert sum(isinstance(m, nn.Hardswish) for m in model.modules()) > 10  # put back


def test_tflite_int8_is_nhwc_float_io_and_one_xnnpack_partition(tmp_path):
    """Before the rewrite every int8 HARD_SWISH left XNNPACK (no int8 kernel there) and
    split the graph; now the file has none and the delegate takes the whole graph."""
    pytest.importorskip("ai_edge_quantizer", reason="the export extra is not installed")
    from ai_edge_litert.interpreter import Interpreter

    from segme.export.tflite import export_tflite, tflite_fp16, tflite_int8
    from segme.runtime.litert import LiteRTBackend, native_logs_silenced

    torch.manual_seed(0)
    model = HardSwishNet().eval()
    card = ModelCard("test_tiny", input_size=(32, 32), size_divisor=4)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((1, 3, 32, 32)).astype(np.float32) for _ in range(8)]
    plain = export_tflite(model, tmp_path / "plain.tflite", card)
    integer = export_tflite(model, tmp_path / "integer.tflite", card, integer=True)
    eight = tflite_int8(integer, tmp_path / "int8.tflite", card, xs)
    assert op_counts(plain)["HARD_SWISH"] == 2
    counts = op_counts(eight)
    assert "HARD_SWISH" not in counts and "TRANSPOSE" not in counts
    assert counts["CONV_2D"] + counts["DEPTHWISE_CONV_2D"] == 3
    with native_logs_silenced():
        interp = Interpreter(model_path=str(eight), num_threads=1)
        interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert list(inp["shape"]) == [1, 32, 32, 3] and inp["dtype"] == np.float32
    assert list(out["shape"]) == [1, 32, 32, 1] and out["dtype"] == np.float32
    assert [o["op_name"] for o in interp._get_ops_details()].count("DELEGATE") == 1
    backend = LiteRTBackend(eight)
    assert backend.card == dataclasses.replace(card, layout="nhwc")
    with torch.no_grad():
        ref = model(torch.from_numpy(xs[0])).numpy()
    got = backend.run(xs[0])
    assert got.shape == (1, 1, 32, 32) and np.abs(got - ref).max() < 0.1
    # the float NHWC file is the network to float rounding, fed the NCHW data path
    assert np.abs(LiteRTBackend(plain).run(xs[0]) - ref).max() < 1e-5
    # float16 weights: a smaller file with the card, the same alphas to fp16 rounding
    half = tflite_fp16(plain, tmp_path / "fp16.tflite")
    with native_logs_silenced():
        dtypes = {t["dtype"] for t in Interpreter(model_path=str(half)).get_tensor_details()}
    assert np.float16 in dtypes  # the weights, dequantised once when the file is loaded
    assert LiteRTBackend(half).card == backend.card
    assert np.abs(LiteRTBackend(half).run(xs[0]) - ref).max() < 1e-2


def test_op_counts_of_onnx_and_its_optimised_graph(tmp_path):
    from segme.export.onnx import export_onnx
    from segme.export.quantize import to_int8

    torch.manual_seed(0)
    model = HardSwishNet().eval()
    card = ModelCard("test_tiny", input_size=(32, 32), size_divisor=4)
    fp32 = export_onnx(model, tmp_path / "m.onnx", card)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((1, 3, 32, 32)).astype(np.float32) for _ in range(4)]
    with integer_friendly(model):
        source = export_onnx(model, tmp_path / "integer.onnx", card)
    eight = to_int8(source, tmp_path / "m8.onnx", xs)
    stored, fused = op_counts(eight), op_counts(eight, optimized=True)
    assert stored["Conv"] == 3 and stored["QuantizeLinear"] > 0
    assert fused.get("QLinearConv") == 3 and "Conv" not in fused  # ORT fuses QDQ groups
    assert "HardSigmoid" not in fused  # no float island between the integer ops
    assert op_counts(fp32)["Conv"] == 3
    table = format_counts({"fp32": op_counts(fp32), "int8": fused})
    assert table.splitlines()[0] == "| op | fp32 | int8 |" and "| **total** |" in table
    with pytest.raises(ValueError, match=".onnx, .tflite or .xml"):
        op_counts(tmp_path / "m.pt")


def test_qat_rounds_weights_keeps_the_state_dict_and_detaches():
    from segme.train import qat

    torch.manual_seed(0)
    model = create_model("mnv3_unet").eval()
    keys = list(model.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
    qat.attach(model)
    assert qat.is_attached(model) and list(model.state_dict()) == keys
    model.train()
    model(x)  # observers see a batch
    model.eval()
    with torch.no_grad():
        fake = model(x)
    assert 1e-4 < (fake - ref).abs().max() < 0.5  # rounded, not broken
    model.train()
    model(x).mean().backward()  # straight-through gradients reach the weights
    assert all(p.grad is not None for p in model.parameters())
    qat.detach(model)
    assert not qat.is_attached(model)
    float_copy = create_model("mnv3_unet").eval()
    float_copy.load_state_dict(model.state_dict())  # the batch norms have moved meanwhile
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), float_copy(x))


def test_train_with_qat_then_export_int8(tmp_path):
    """``segme train --qat 1`` on the tiny model, then the INT8 file from its checkpoint."""
    from segme.cli.export import sample_inputs
    from segme.data.synthetic import make_synthetic_dataset
    from segme.export.onnx import export_onnx
    from segme.export.quantize import to_int8
    from segme.models.loading import load_model
    from segme.runtime.onnx import OnnxBackend
    from segme.train.config import TrainConfig
    from segme.train.loop import train

    make_synthetic_dataset(tmp_path / "data", n_train=16, n_val=8, size=(40, 48), seed=1)
    with pytest.raises(ValueError, match="--qat 3 is more than --epochs 2"):
        TrainConfig(model="test_tiny", data=str(tmp_path / "data/train"), epochs=2,
                    qat=3).check()
    cfg = TrainConfig(model="test_tiny", data=str(tmp_path / "data/train"),
                      val=str(tmp_path / "data/val"), out=str(tmp_path / "run"), size=32,
                      epochs=2, qat=1, batch=4, workers=0, progress=False, tensorboard=False)
    train(cfg)
    net, card = load_model(tmp_path / "run/best.pt")
    assert not any(type(m).__name__ == "FakeQuantize" for m in net.modules())
    fp32 = export_onnx(net, tmp_path / "m.onnx", card)
    calib = sample_inputs(card, tmp_path / "data/train", 8)
    eight = OnnxBackend(to_int8(fp32, tmp_path / "m8.onnx", calib))
    ref = OnnxBackend(fp32)
    assert max(np.abs(eight.run(x) - ref.run(x)).max() for x in calib) < 0.3
