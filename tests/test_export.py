"""Format conversions on a real family (shared constants, several Resize ops)."""

import numpy as np
import onnx
import pytest
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


def _randomise_batch_norms(model: torch.nn.Module) -> None:
    """Statistics far from (0, 1), so that folding them into the convolutions matters."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)


def _shipped_like(tmp_path_factory, **kwargs):
    """mnv3_unet as the built-in models are shipped (the lite one as ONNX only), with batch
    norms that matter, exported once per module: (model, its ONNX file)."""
    torch.manual_seed(0)
    model = create_model("mnv3_unet", **kwargs).eval()
    _randomise_batch_norms(model)
    return model, export_onnx(model, tmp_path_factory.mktemp("shipped") / "m.onnx",
                              model.card(64))


@pytest.fixture(scope="module")
def shipped_default(tmp_path_factory):
    return _shipped_like(tmp_path_factory)


@pytest.fixture(scope="module")
def shipped_lite(tmp_path_factory):
    return _shipped_like(tmp_path_factory, refine=False)


@pytest.mark.parametrize("shipped", ["shipped_default", "shipped_lite"])
def test_weights_read_back_from_onnx_rebuild_the_network(shipped, request):
    """A model shipped only as ONNX can be fine-tuned or re-exported: the folded batch
    norms come back as identities plus bias, and the network computes the same alpha."""
    from segme.train.checkpoint import load_model

    model, path = request.getfixturevalue(shipped)
    back, card = load_model(path)
    assert card == model.card(64)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert (back(x) - model(x)).abs().max() < 1e-4
    back.train()(x).sum().backward()  # trainable: gradients reach every parameter
    assert all(p.grad is not None for p in back.parameters())


def test_weights_from_quantised_or_foreign_onnx_are_refused(shipped_default, tmp_path):
    from segme.train.checkpoint import load_model

    _, fp32 = shipped_default  # its batch norms leave no map of one value: a histogram exists
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((1, 3, 64, 64)).astype(np.float32) for _ in range(4)]
    eight = to_int8(fp32, tmp_path / "m8.onnx", xs)
    with pytest.raises(ValueError, match="quantised"):
        load_model(eight)
    bare = onnx.load(str(fp32))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(ValueError, match="no segme model card"):
        load_model(tmp_path / "bare.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00not a protobuf" * 10)
    with pytest.raises(ValueError, match="not an ONNX file"):
        load_model(tmp_path / "junk.onnx")
