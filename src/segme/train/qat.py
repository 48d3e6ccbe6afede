"""Quantisation-aware training: the last epochs see the rounding of the INT8 export.

``attach`` makes a model compute as ``segme export --quantize int8`` will: convolution
weights fake-quantised to int8, symmetric with a scale per output channel, and the outputs
of batch norms, activations, bias convolutions and residual blocks fake-quantised to
uint8 with moving min/max ranges (``torch.ao.quantization.FakeQuantize``, straight-through
gradients). Hooks and instance attributes only: no module is added or renamed, so the
state dict, checkpoints, the EMA copy and every export are those of the float network.
The INT8 file is then exported from the fine-tuned weights as usual, its ranges
calibrated again on photos.

Per-channel symmetric weights are unchanged by batch-norm folding (the fold scales each
output channel), so fake-quantising the weights before the fold rounds them as the
exported, folded graph does.
"""

from __future__ import annotations

import types

import torch
import torch.nn as nn
from torch.ao.quantization import FakeQuantize, MovingAverageMinMaxObserver

_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.SiLU,
                nn.PReLU, nn.LeakyReLU)


def _conv_forward(self: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    w = self.weight
    scale = (w.detach().abs().amax(dim=(1, 2, 3)) / 127).clamp_min(1e-8)  # [out]
    zero = torch.zeros_like(scale, dtype=torch.int32)
    w = torch.fake_quantize_per_channel_affine(w, scale.float(), zero, 0, -127, 127)
    return self._conv_forward(x, w, self.bias)


def _activation_quantizer() -> FakeQuantize:
    return FakeQuantize(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                        dtype=torch.quint8, qscheme=torch.per_tensor_affine)


def _output_hook(fq: FakeQuantize):
    def hook(module: nn.Module, args, out):
        if not isinstance(out, torch.Tensor) or not out.is_floating_point():
            return out
        fq.to(out.device)
        return fq(out)
    return hook


def _is_block(module: nn.Module) -> bool:
    """A block that ends in an elementwise sum (a residual): its output is a tensor of its
    own in the integer graph."""
    return type(module).__name__.endswith(("Residual", "Excite"))


def attach(model: nn.Module) -> list:
    """Fake-quantise ``model`` in place (see the module docstring).

    Returns:
        Handles for ``detach``.
    """
    if getattr(model, "_segme_qat", None):
        return model._segme_qat
    handles: list = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and "forward" not in vars(module):
            module.forward = types.MethodType(_conv_forward, module)
            handles.append(("conv", module))
        observed = (isinstance(module, (nn.BatchNorm2d, *_ACTIVATIONS)) or _is_block(module)
                    or (isinstance(module, nn.Conv2d) and module.bias is not None))
        if observed:
            handles.append(("hook", module.register_forward_hook(
                _output_hook(_activation_quantizer()))))
    model._segme_qat = handles
    return handles


def detach(model: nn.Module) -> None:
    """Undo ``attach``: the float network again, with the weights it has now."""
    for kind, item in getattr(model, "_segme_qat", None) or []:
        if kind == "conv":
            del item.forward
        else:
            item.remove()
    model._segme_qat = None


def is_attached(model: nn.Module) -> bool:
    return bool(getattr(model, "_segme_qat", None))

