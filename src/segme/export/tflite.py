"""TFLite export through litert-torch (the ``export`` extra), the ModelCard in the file."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import tempfile
from pathlib import Path

import numpy as np
import torch

from segme.cards import CARD_KEY, ModelCard
from segme.export.onnx import out_of_place
from segme.io.files import atomic_output
from segme.runtime.litert import card_in, native_logs_silenced


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


def export_tflite(model: torch.nn.Module, path: str | Path, card: ModelCard,
                  layout: str = "nhwc", integer: bool = False) -> Path:
    """Convert ``model.forward`` (alpha out) to a float32 ``.tflite`` file.

    Args:
        model: a ``SegModel``, converted in eval mode.
        path: output ``.tflite`` file.
        card: card to embed; its ``layout`` is set to ``layout``.
        layout: "nhwc" (input [1, h, w, C], alpha [1, h, w, 1]: TFLite's own order, no
            transposes in the graph) or "nchw" (input [1, C, h, w], as in torch).
        integer: convert the graph ``integer_friendly`` (the source of an INT8 file).

    Returns:
        The written path.
    """
    from segme.export.rewrite import integer_friendly

    if layout not in ("nhwc", "nchw"):
        raise ValueError(f"layout must be 'nhwc' or 'nchw', got {layout!r}")
    card = dataclasses.replace(card, layout=layout)
    h, w = card.input_size
    x = torch.zeros(1, card.in_channels, h, w)
    model.eval()
    # TensorFlow, torchao and the converter log at import and narrate each pass
    with tempfile.TemporaryDirectory() as tmp, native_logs_silenced(), \
            contextlib.redirect_stdout(io.StringIO()), out_of_place(model), \
            integer_friendly(model) if integer else contextlib.nullcontext():
        try:
            import litert_torch
        except ImportError:
            raise ImportError("TFLite export needs litert-torch: "
                              "pip install 'segme[export]'") from None
        module = model
        if layout == "nhwc":  # transposes outside the graph: the converter drops them
            module = litert_torch.to_channel_last_io(model, args=[0], outputs=[0])
            x = x.permute(0, 2, 3, 1)
        raw = Path(tmp) / "model.tflite"
        litert_torch.convert(module, (x,)).export(str(raw))
        data = add_metadata(raw.read_bytes(), CARD_KEY, card.to_json().encode())
    with atomic_output(path) as out:
        out.write_bytes(data)
    return Path(path)


def tflite_int8(src: str | Path, dst: str | Path, card: ModelCard,
                calibration: list) -> Path:
    """Full-integer INT8 TFLite with ai-edge-quantizer: int8 weights (symmetric, a scale
    per output channel) and int8 activations calibrated on ``calibration`` (prepared
    inputs float32 [1, C, h, w]). Input and output stay float32, quantised and
    dequantised inside the graph (by XNNPACK, not in Python); the layout and card are
    those of ``src`` (``export_tflite(..., integer=True)``).
    """
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import qtyping, quantizer, recipe_manager
    from ai_edge_quantizer.algorithm_manager import AlgorithmName


    if not len(calibration):
        raise ValueError("INT8 quantisation needs calibration images (--calibration DIR)")
    src_card = card_in(Path(src).read_bytes(), str(src)) or card
    signatures = Interpreter(model_path=str(src)).get_signature_list()
    name = next(iter(signatures))
    input_name = signatures[name]["inputs"][0]
    recipe = recipe_manager.RecipeManager()
    recipe.add_static_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                             activation_num_bits=8, weight_num_bits=8,
                             algorithm_key=AlgorithmName.MIN_MAX_UNIFORM_QUANT)
    for io_op in (qtyping.TFLOperationName.INPUT, qtyping.TFLOperationName.OUTPUT):
        recipe.add_quantization_config(regex=".*", operation_name=io_op,
                                       algorithm_key=AlgorithmName.NO_QUANTIZE)
    qt = quantizer.Quantizer(str(src))
    qt.load_quantization_recipe(recipe.get_quantization_recipe())
    if src_card.layout == "nhwc":
        calibration = [np.ascontiguousarray(x.transpose(0, 2, 3, 1)) for x in calibration]
    with contextlib.redirect_stdout(io.StringIO()), native_logs_silenced():
        stats = qt.calibrate({name: [{input_name: x} for x in calibration]}, num_threads=2)
    return _write_quantized(qt, stats, dst)


def tflite_fp16(src: str | Path, dst: str | Path) -> Path:
    """Float16 weights (half the file) with float32 input, output and computation:
    XNNPACK dequantises the weights once when it loads the file."""
    from ai_edge_quantizer import qtyping, quantizer, recipe_manager
    from ai_edge_quantizer.algorithm_manager import AlgorithmName


    recipe = recipe_manager.RecipeManager()
    recipe.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                                  num_bits=16, algorithm_key=AlgorithmName.FLOAT_CASTING)
    qt = quantizer.Quantizer(str(src))
    qt.load_quantization_recipe(recipe.get_quantization_recipe())
    return _write_quantized(qt, None, dst)


def _write_quantized(qt, stats, dst: str | Path) -> Path:
    """Quantise with ai-edge-quantizer (``stats``: calibration, None for weight-only) and
    write the file atomically; the float file's card must have come through."""

    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()), \
            native_logs_silenced():
        raw = Path(tmp) / "quantized.tflite"
        qt.quantize(stats).export_model(str(raw), overwrite=True)
        data = raw.read_bytes()
    if card_in(data) is None:
        raise ValueError("the quantiser dropped the model card; export the float file with "
                         "segme.export.tflite.export_tflite")
    with atomic_output(dst) as out:
        out.write_bytes(data)
    return Path(dst)
