"""Prisma-Net: a U-Net of residual depthwise-separable blocks with additive skips.

Skips are added rather than concatenated, so every decoder stage ends with exactly the
channel count of the skip it meets; this keeps the decoder as cheap as the encoder and the
graph free of concat ops.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from segme.models.base import SegModel
from segme.models.blocks import ConvBNAct, SeparableResidual, make_divisible
from segme.models.decoders import AdditiveDecoder
from segme.models.registry import register_model


class PrismaNet(SegModel):
    """Residual depthwise-separable U-Net, total stride 32, 256x256 by default.

    Encoder: a strided 3x3 stem, then four stages of (strided block, block). Decoder: at each
    level a block maps the deep features to the skip's width, a bilinear x2 brings them to the
    skip's size, and the skip is added. A last block at stride 2 and a 1x1 head give logits
    that are bilinearly resized to the input.

    Args:
        in_channels: 3 for RGB, 4 with a previous-frame alpha plane.
        width: channel multiplier on the base widths (16, 32, 64, 128, 256).
        act: activation used throughout.
    Shapes:
        x [B, in_channels, H, W] with H, W multiples of 32 -> logits [B, 1, H, W].
    """

    default_size = 256
    size_divisor = 32
    BASE_WIDTHS = (16, 32, 64, 128, 256)  # at strides 2, 4, 8, 16, 32

    def __init__(self, in_channels: int = 3, width: float = 1.0, act: str = "relu") -> None:
        super().__init__()
        self.in_channels = in_channels
        ch = [make_divisible(c * width) for c in self.BASE_WIDTHS]
        self.stem = ConvBNAct(in_channels, ch[0], 3, 2, act=act)
        self.encoder = nn.ModuleList(
            nn.Sequential(
                SeparableResidual(ch[i - 1], ch[i], stride=2, act=act),
                SeparableResidual(ch[i], ch[i], act=act),
            )
            for i in range(1, len(ch))
        )
        self.decoder = AdditiveDecoder(ch, act=act)  # ends in the head

    def outputs(self, x: torch.Tensor, aux: bool = True) -> dict[str, torch.Tensor]:
        """x [B, C, H, W] normalised -> {"logits": [B, 1, H, W]}."""
        feats = [self.stem(x)]  # [B, ch[0], H/2, W/2]
        for stage in self.encoder:
            feats.append(stage(feats[-1]))  # strides 4, 8, 16, 32
        return {"logits": self.decoder(feats, x)}  # [B, 1, H, W]


@register_model
def prisma_net(**kwargs) -> PrismaNet:
    return PrismaNet(**kwargs)
