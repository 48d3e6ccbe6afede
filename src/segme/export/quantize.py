"""Smaller ONNX files: FP16 weights and static INT8 post-training quantisation.

Both keep float32 input and output, so a runtime feeds them exactly like the float model,
and both carry the float model's ModelCard.
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
    """Static INT8 quantisation (QDQ, per-channel weights) calibrated on real inputs.

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
    del q.metadata_props[:]
    _copy_card(model, q)
    with atomic_output(dst) as tmp_path:
        onnx.save(q, str(tmp_path))
    return Path(dst)
