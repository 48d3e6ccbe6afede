"""The contract every segme network follows.

A family implements one method, ``outputs(x, aux)``, returning a dict of raw outputs.
``forward(x)`` is the deployed graph: ``sigmoid(outputs(x, aux=False)["logits"])``, alpha in
[0, 1], what ONNX export traces; ``aux=False`` lets it skip heads that only training uses.
``forward_train(x)`` is ``outputs(x, aux=True)`` for the losses. Both run the same layers
(no second copy of the network for export). Keys:

- ``logits``           [B, 1, H, W] main prediction before the sigmoid (always present)
- ``aux_logits``       [B, 1, h, w] auxiliary prediction from deep features (optional)
- ``boundary_logits``  [B, 1, h, w] person-edge prediction (optional, PortraitNet)
- ``semantic_logits``  [B, 1, H/8, W/8] coarse semantic matte (optional, MODNet)
- ``detail_logits``    [B, 1, H, W] boundary detail matte (optional, MODNet)
"""

from __future__ import annotations

import torch
import torch.nn as nn

from segme.cards import IMAGENET_MEAN, IMAGENET_STD, ModelCard, as_hw, nearest_sides


class SegModel(nn.Module):
    """Base class: subclasses implement ``outputs(x, aux)``.

    Class attributes describe how the model is fed; ``card()`` turns them into a ModelCard.
    """

    default_size: int = 256  # side of the square input the family was designed for
    size_divisor: int = 32  # input sides must be multiples of this (total stride)
    in_channels: int = 3  # 4 when a previous-frame alpha is the 4th plane
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    loss_recipe: str = "seg"  # which loss family train/losses.py applies: seg | matting | modnet

    def outputs(self, x: torch.Tensor, aux: bool = True) -> dict[str, torch.Tensor]:
        """Raw outputs (keys above); ``aux=False`` may skip training-only heads."""
        raise NotImplementedError

    def load_pretrained(self) -> str:
        """Load ImageNet weights into the encoder, in place; returns what was loaded.

        Raises:
            ValueError: the family has no pretrained weights.
        """
        raise ValueError(f"{getattr(self, 'arch', type(self).__name__)} has no ImageNet "
                         f"weights; efficientnet_unet has (segme models list)")

    def forward_train(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every output the losses use, auxiliary heads included."""
        self.check_input(x)
        return self.outputs(x, aux=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: float32 [B, C, H, W] normalised image (plus prior plane) -> alpha [B, 1, H, W]."""
        self.check_input(x)
        return torch.sigmoid(self.outputs(x, aux=False)["logits"])

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError that says how to fix ``x`` when the network cannot take it.

        Skipped while torch traces or compiles the model (ONNX export, ``torch.compile``):
        it is a check on the caller's input, not part of the graph.
        """
        if torch.compiler.is_compiling() or torch.jit.is_tracing():
            return
        name = getattr(self, "arch", type(self).__name__)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            planes = "RGB" if self.in_channels == 3 else "RGB + previous-frame alpha"
            raise ValueError(f"{name} takes [B, {self.in_channels}, H, W] ({planes}); got "
                             f"{list(x.shape)}")
        h, w = x.shape[-2:]
        d = self.size_divisor
        if h % d or w % d:
            raise ValueError(
                f"{name} needs input sides that are multiples of {d} (its size divisor); got "
                f"{h}x{w}: resize or pad to {nearest_sides(h, d)} (height) x {nearest_sides(w, d)} "
                "(width)")

    def card(self, size: int | tuple[int, int] | None = None) -> ModelCard:
        size = size or self.default_size
        hw = as_hw(size)
        return ModelCard(
            arch=getattr(self, "arch", type(self).__name__.lower()),
            arch_kwargs=dict(getattr(self, "arch_kwargs", {})),
            input_size=hw,
            size_divisor=self.size_divisor,
            mean=self.mean,
            std=self.std,
            stateful_inputs=["prev_alpha"] if self.in_channels == 4 else [],
        )
