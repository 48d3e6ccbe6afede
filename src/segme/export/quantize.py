"""Smaller ONNX files: FP16 or INT8 weights stored only (computed in float32), FP16
computation, and static INT8 post-training quantisation.

All keep float32 input and output, so a runtime feeds them exactly like the float model,
and all carry the float model's ModelCard.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from segme.cards import CARD_KEY
from segme.io.files import atomic_output


def _copy_card(src_proto, dst_proto) -> None:
    for prop in src_proto.metadata_props:
        if prop.key == CARD_KEY:
            meta = dst_proto.metadata_props.add()
            meta.key, meta.value = prop.key, prop.value


def stored_weights(src: str | Path, dst: str | Path, kind: str = "fp16") -> Path:
    """Store the weights small and compute in float32: the float model's speed, and its
    alphas to the rounding of the weights.

    ``fp16``: each float32 initializer becomes a float16 one, cast back by a ``Cast`` node
    that writes the original name (half the file). ``int8``: weights of two or more
    dimensions become int8 with one symmetric scale per output channel, restored by
    ``Cast`` and ``Mul`` (about a quarter of the file); the rest as ``fp16``. ONNX Runtime
    folds those constant nodes when it loads the file, so none runs per call. CPUs have no
    fast float16 arithmetic in ONNX Runtime (``to_fp16`` files run slower than float32
    there) and INT8 arithmetic needs calibrated activations (``to_int8``); these files
    change the storage only.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if kind not in ("fp16", "int8"):
        raise ValueError(f"stored weights are fp16 or int8, got {kind!r}")
    model = onnx.load(str(src))
    graph = model.graph
    nodes = []
    for init in list(graph.initializer):
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < 64:
            continue  # scales, shapes and the like: not worth a node
        w, name = numpy_helper.to_array(init), init.name
        graph.initializer.remove(init)
        if kind == "int8" and w.ndim >= 2:  # [out, in, ...]: a scale per output channel
            shape = (-1,) + (1,) * (w.ndim - 1)
            scale = np.abs(w.reshape(len(w), -1)).max(1) / 127
            scale = np.where(scale > 0, scale, 1).astype(np.float32).reshape(shape)
            graph.initializer.extend([
                numpy_helper.from_array(np.round(w / scale).astype(np.int8), f"{name}_int8"),
                numpy_helper.from_array(scale, f"{name}_scale")])
            nodes += [helper.make_node("Cast", [f"{name}_int8"], [f"{name}_float"],
                                       to=TensorProto.FLOAT, name=f"{name}_cast"),
                      helper.make_node("Mul", [f"{name}_float", f"{name}_scale"], [name],
                                       name=f"{name}_scaled")]
        else:
            graph.initializer.append(numpy_helper.from_array(w.astype(np.float16),
                                                             f"{name}_fp16"))
            nodes.append(helper.make_node("Cast", [f"{name}_fp16"], [name],
                                          to=TensorProto.FLOAT, name=f"{name}_cast"))
    for node in reversed(nodes):  # before every consumer: the graph stays sorted
        graph.node.insert(0, node)
    with atomic_output(dst) as tmp:
        onnx.save(model, str(tmp))
    return Path(dst)


def to_fp16(src: str | Path, dst: str | Path) -> Path:
    """Convert weights and activations to float16; input and output stay float32."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    half = convert_float_to_float16(model, keep_io_types=True)
    # the converter inserts one Cast per consumer of a shared constant (e.g. the scales of
    # several Resize ops), all identical and writing the same tensor, which ONNX Runtime
    # rejects: keep the first of each
    seen: set[bytes] = set()
    unique = []
    for node in half.graph.node:
        key = node.SerializeToString()
        if key not in seen:
            seen.add(key)
            unique.append(node)
    del half.graph.node[:]
    half.graph.node.extend(unique)
    del half.metadata_props[:]
    _copy_card(model, half)
    with atomic_output(dst) as tmp:
        onnx.save(half, str(tmp))
    return Path(dst)


class _Calibration:
    """Feeds prepared calibration inputs [1, C, h, w] to ONNX Runtime's calibrator."""

    def __init__(self, name: str, inputs: Sequence[np.ndarray]) -> None:
        self._it = iter([{name: x.astype(np.float32)} for x in inputs])

    def get_next(self):
        return next(self._it, None)


def to_int8(src: str | Path, dst: str | Path, calibration: Sequence[np.ndarray]) -> Path:
    """Static INT8 quantisation calibrated on real inputs: QDQ, int8 weights symmetric with
    a scale per output channel, uint8 activations; ONNX Runtime fuses each
    DequantizeLinear-op-QuantizeLinear group into its ``QLinear*`` kernel when it loads the
    file. Export the source ``integer_friendly`` (``segme.export.rewrite``) so no
    activation is left without an integer kernel.

    Args:
        src: float32 ONNX model written by ``export_onnx``.
        dst: output file.
        calibration: prepared inputs, float32 [1, C, h, w] each (``preprocess.prepare``);
            a few dozen representative photos are enough.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not len(calibration):
        raise ValueError("INT8 quantisation needs calibration images (--calibration DIR)")
    model = onnx.load(str(src))
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        out = Path(tmp) / "int8.onnx"
        quantize_static(
            str(pre), str(out), _Calibration(model.graph.input[0].name, calibration),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.Percentile,
            extra_options={"CalibPercentile": 99.99},
        )
        q = onnx.load(str(out))
    for node in q.graph.node:  # the exporter's per-node stack traces: a third of the file
        del node.metadata_props[:]
        node.doc_string = ""
    del q.metadata_props[:]
    _copy_card(model, q)
    with atomic_output(dst) as tmp_path:
        onnx.save(q, str(tmp_path))
    return Path(dst)
