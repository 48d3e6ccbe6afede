"""Export-time stand-ins that compute the same function with ops integer kernels run.

A network exports as written; for INT8 files only, ``integer_friendly`` swaps activation
modules that have no integer kernel for exact decompositions into ones that do, and puts
the originals back afterwards. No parameters are involved, so the state dict, the float
exports and training never see the change.

Why: XNNPACK's TFLite delegate has no int8 ``HARD_SWISH`` (float32 only), so each of the
37 hard-swishes of a MobileNetV3 U-Net leaves the delegate and splits the graph into 38
partitions, 4x slower than the float file. ``relu6(x + 3) * x / 6`` becomes an int8
``ADD`` with a fused ``RELU6`` and a ``MUL`` (the ``/ 6`` folds into the output scale),
both delegated. ONNX Runtime has no integer ``HardSigmoid``; the same rewrite keeps its
QDQ graph free of float islands.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F


class DecomposedHardswish(nn.Module):
    """hardswish(x) = relu6(x + 3) * x / 6, written so converters keep the pieces (the
    TFLite converter folds ``x * relu6(x + 3) / 6`` back into ``HARD_SWISH``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x + 3.0) * x * (1.0 / 6.0)


class DecomposedHardsigmoid(nn.Module):
    """hardsigmoid(x) = relu6(x + 3) / 6."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x + 3.0) * (1.0 / 6.0)


_STAND_INS = {nn.Hardswish: DecomposedHardswish, nn.Hardsigmoid: DecomposedHardsigmoid}


@contextlib.contextmanager
def integer_friendly(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, ``model``'s ``nn.Hardswish`` / ``nn.Hardsigmoid`` modules are
    their decompositions (same outputs to float rounding); restored on exit."""
    swapped = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            stand_in = _STAND_INS.get(type(child))
            if stand_in is not None:
                swapped.append((parent, name, child))
                setattr(parent, name, stand_in())
    try:
        yield model
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)
