"""OpenVINO IR export (the ``openvino`` extra): an ONNX file to ``.xml`` + ``.bin``, the
ModelCard in the IR's runtime info."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from segme.cards import ModelCard
from segme.runtime.openvino import RT_INFO_PATH, _import_openvino


def save_ir(src: str | Path, dst: str | Path, card: ModelCard,
            fp16_weights: bool = False) -> Path:
    """Convert an ONNX file written by ``segme export`` (float, or INT8 QDQ: OpenVINO runs
    its quantised convolutions in int8) to IR.

    Args:
        src: ``.onnx`` file.
        dst: ``.xml`` path; the weights go to the ``.bin`` beside it.
        card: card written into the IR's rt_info.
        fp16_weights: store float weights as float16 (half the ``.bin``); the CPU plugin
            computes in f32 (or its precision hint) either way.

    Returns:
        The ``.xml`` path. Both files appear together: written in a temporary folder first.
    """
    ov = _import_openvino()
    dst = Path(dst)
    model = ov.convert_model(str(src))
    model.set_rt_info(card.to_json(), RT_INFO_PATH)
    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        xml = Path(tmp) / dst.name
        ov.save_model(model, str(xml), compress_to_fp16=fp16_weights)
        shutil.move(xml.with_suffix(".bin"), dst.with_suffix(".bin"))
        shutil.move(xml, dst)
    return dst
