"""TFLite export through litert-torch (the ``export`` extra), the ModelCard in the file."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import torch

from segme.cards import CARD_KEY, ModelCard
from segme.export.onnx import out_of_place
from segme.io.files import atomic_output
from segme.runtime.litert import native_logs_silenced


def add_metadata(tflite: bytes, key: str, value: bytes) -> bytes:
    """Return a copy of a TFLite flatbuffer with one more metadata entry (name -> bytes)."""
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(tflite, 0))
    buf = schema.BufferT()
    buf.data = np.frombuffer(value, np.uint8)
    model.buffers.append(buf)
    meta = schema.MetadataT()
    meta.name = key
    meta.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), meta]
    builder = flatbuffers.Builder(len(tflite) + len(value) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def export_tflite(model: torch.nn.Module, path: str | Path, card: ModelCard) -> Path:
    """Convert ``model.forward`` (alpha out, NCHW in) to a float32 ``.tflite`` file."""
    h, w = card.input_size
    x = torch.zeros(1, card.in_channels, h, w)
    model.eval()
    # TensorFlow, torchao and the converter log at import and narrate each pass
    with tempfile.TemporaryDirectory() as tmp, native_logs_silenced(), \
            contextlib.redirect_stdout(io.StringIO()), out_of_place(model):
        try:
            import litert_torch
        except ImportError:
            raise ImportError("TFLite export needs litert-torch: "
                              "pip install 'segme[export]'") from None
        raw = Path(tmp) / "model.tflite"
        litert_torch.convert(model, (x,)).export(str(raw))
        data = add_metadata(raw.read_bytes(), CARD_KEY, card.to_json().encode())
    with atomic_output(path) as out:
        out.write_bytes(data)
    return Path(path)


def tflite_int8(src: str | Path, dst: str | Path, card: ModelCard,
                calibration: list) -> Path:
    """Full-integer INT8 TFLite (weights and activations) with ai-edge-quantizer, calibrated
    on prepared inputs [1, C, h, w]; the card is written into the result."""
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    if not len(calibration):
        raise ValueError("INT8 quantisation needs calibration images (--calibration DIR)")
    signatures = Interpreter(model_path=str(src)).get_signature_list()
    name = next(iter(signatures))
    input_name = signatures[name]["inputs"][0]
    qt = quantizer.Quantizer(str(src))
    qt.load_quantization_recipe(recipe.static_wi8_ai8())
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()), \
            native_logs_silenced():
        stats = qt.calibrate({name: [{input_name: x} for x in calibration]}, num_threads=2)
        raw = Path(tmp) / "int8.tflite"
        qt.quantize(stats).export_model(str(raw), overwrite=True)
        data = raw.read_bytes()
    from segme.runtime.litert import card_in

    if card_in(data) is None:  # the quantiser may drop the float file's metadata
        data = add_metadata(data, CARD_KEY, card.to_json().encode())
    with atomic_output(dst) as out:
        out.write_bytes(data)
    return Path(dst)
