"""ONNX export with the ModelCard embedded in the file and a parity check against torch."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from segme.cards import CARD_KEY, ModelCard
from segme.io.files import atomic_output

DEFAULT_OPSET = 18


@contextlib.contextmanager
def out_of_place(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Turn ``inplace=True`` activations off while a graph is traced: the exporters
    functionalise every in-place op, which halves their speed, and the graph is the same."""
    flipped = [m for m in model.modules() if getattr(m, "inplace", None) is True]
    for m in flipped:
        m.inplace = False
    try:
        yield model
    finally:
        for m in flipped:
            m.inplace = True


def export_onnx(
    model: torch.nn.Module,
    path: str | Path,
    card: ModelCard | None = None,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Export ``model.forward`` (alpha out) to ONNX with a dynamic batch axis.

    Args:
        model: a ``SegModel``; exported in eval mode as written.
        path: output ``.onnx`` file; written to a temporary name first, then renamed.
        card: card to embed; default ``model.card()``.
        opset: ONNX opset version.

    Returns:
        The written path. Input ``image`` float32 [N, C, h, w]; output ``alpha`` [N, 1, h, w].
    """
    import onnx

    # the exporter warns once per missing torchvision op; segme uses none of them
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    card = card or model.card()
    path = Path(path)
    h, w = card.input_size
    was_training = model.training
    model.eval()
    x = torch.zeros(1, card.in_channels, h, w)
    try:
        with warnings.catch_warnings(), torch.no_grad(), out_of_place(model):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                (x,),
                input_names=["image"],
                output_names=["alpha"],
                opset_version=opset,
                dynamo=True,
                dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=1024)}},
                verbose=False,
            )
        proto = program.model_proto
        meta = proto.metadata_props.add()
        meta.key, meta.value = CARD_KEY, card.to_json()
        proto.producer_name = "segme"
        with atomic_output(path) as tmp:
            onnx.save(proto, str(tmp))
    finally:
        model.train(was_training)
    return path


def parity(model: torch.nn.Module, path: str | Path, inputs: np.ndarray) -> float:
    """Max abs alpha difference between torch and ONNX Runtime on ``inputs`` [N, C, h, w]."""
    from segme.runtime.onnx import OnnxBackend

    model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(inputs)).numpy()
    got = OnnxBackend(path).run(inputs)
    return float(np.abs(ref - got).max())
