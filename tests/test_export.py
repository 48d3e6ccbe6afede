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


def test_tflite_int8_keeps_a_long_card_written_after_the_flatbuffer(tmp_path):
    """ai-edge-quantizer moves the buffers of a model past 256 KB of weights out of the
    flatbuffer (offset + size from the start of the file), the card's metadata buffer
    among them; the card must still be found there."""
    import dataclasses

    from ai_edge_litert import schema_py_generated as schema

    from segme.cards import CARD_KEY
    from segme.export.tflite import export_tflite, tflite_int8
    from segme.runtime.litert import LiteRTBackend, read_card

    torch.manual_seed(0)
    model = create_model("test_tiny", width=192).eval()  # 670 K weights: the external layout
    card = dataclasses.replace(model.card(32), notes="how it was trained. " * 150)
    fp32 = export_tflite(model, tmp_path / "m.tflite", card)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((1, 3, 32, 32)).astype(np.float32) for _ in range(2)]
    eight = tflite_int8(fp32, tmp_path / "m8.tflite", card, xs)
    flat = schema.Model.GetRootAs(eight.read_bytes(), 0)
    meta = next(flat.Metadata(i) for i in range(flat.MetadataLength())
                if flat.Metadata(i).Name().decode() == CARD_KEY)
    buf = flat.Buffers(meta.Buffer())
    assert buf.DataLength() == 0 and buf.Offset() > 1  # the case this test is about
    assert read_card(eight) == dataclasses.replace(card, layout="nhwc")
    assert LiteRTBackend(eight).run(xs[0]).shape == (1, 1, 32, 32)


@pytest.mark.parametrize("name", ["mnv3-unet-portraits-224", "mnv3-unet-portraits-192"])
def test_weights_read_back_from_onnx_rebuild_the_network(name):
    """A model shipped as ONNX (the lite one only so) can be fine-tuned or re-exported: the
    folded batch norms come back as identities plus bias, and the network computes the
    alpha of the shipped file."""
    from segme.models.loading import load_model
    from segme.runtime import resolve_model

    path = resolve_model(name)
    shipped = OnnxBackend(path)
    back, card = load_model(path)
    assert card == shipped.card
    h, w = card.input_size
    x = np.random.default_rng(0).standard_normal((2, 3, h, w)).astype(np.float32)
    with torch.no_grad():
        assert np.abs(back(torch.from_numpy(x)).numpy() - shipped.run(x)).max() < 1e-4
    back.train()(torch.from_numpy(x)).sum().backward()  # trainable: gradients reach every parameter
    assert all(p.grad is not None for p in back.parameters())


def test_weights_from_quantised_or_foreign_onnx_are_refused(tmp_path):
    from segme.models.loading import load_model
    from segme.runtime import resolve_model

    fp32 = resolve_model("mnv3-unet-portraits-192")
    h, w = OnnxBackend(fp32).card.input_size
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((1, 3, h, w)).astype(np.float32) for _ in range(4)]
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


@pytest.mark.parametrize("kind, ratio, tolerance", [("fp16", 0.6, 2e-3), ("int8", 0.4, 3e-2)])
def test_stored_weights_shrink_the_file_and_compute_in_float32(tmp_path, kind, ratio,
                                                               tolerance):
    import onnxruntime as ort

    from segme.export.quantize import stored_weights
    from segme.models.loading import load_model
    from segme.runtime import resolve_model

    fp32 = resolve_model("mnv3-unet-portraits-224")
    small = stored_weights(fp32, tmp_path / f"w-{kind}.onnx", kind)
    assert small.stat().st_size < ratio * fp32.stat().st_size  # plus a node or two a tensor
    ref, got = OnnxBackend(fp32), OnnxBackend(small)
    assert got.card == ref.card
    h, w = ref.card.input_size
    x = np.random.default_rng(1).standard_normal((2, 3, h, w)).astype(np.float32)
    assert np.abs(got.run(x) - ref.run(x)).max() < tolerance
    # ONNX Runtime folds the restoring nodes when it loads the file: none runs per call
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(str(small), so, providers=["CPUExecutionProvider"])
    graph = onnx.load(so.optimized_model_filepath).graph
    stored = {t.name for t in onnx.load(str(small)).graph.initializer
              if t.name.endswith(("_fp16", "_int8"))}
    assert stored and not any(set(n.input) & stored for n in graph.node)
    assert "Conv" in {n.op_type for n in graph.node}
    back, card = load_model(small)  # read back into torch as float32
    with torch.no_grad():
        assert np.abs(back(torch.from_numpy(x)).numpy() - got.run(x)).max() < 1e-4
