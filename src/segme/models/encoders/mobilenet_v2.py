"""MobileNetV2 (Sandler et al. 2018) as a feature extractor, with an output-stride option.

Used by Mobile-UNet, DeepLabV3+, PortraitNet and MODNet. No ImageNet weights ship for it:
those families train from scratch.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from segme.models.blocks import ConvBNAct, InvertedResidual, make_divisible
from segme.models.encoders.base import Encoder

# expansion t, channels c, repeats n, stride s (Sandler et al. 2018, table 2)
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
            (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
# index of the stage after which each returned feature is taken (stride 2, 4, 8, 16, 32)
TAPS = (0, 1, 2, 4, 6)


class MobileNetV2Encoder(Encoder):
    """MobileNetV2 returning five feature maps, at strides 2, 4, 8, 16 and 32 by default.

    Args:
        in_channels: 3 for RGB, 4 with a previous-frame alpha plane.
        width: width multiplier on every stage (0.5 in the mobile portrait models).
        output_stride: 32, 16 or 8; stages past it keep their resolution and dilate their
            depthwise convs instead (same weights, so a checkpoint loads at any of them).
    Attributes:
        out_channels: 16, 24, 32, 96, 320 at width 1.
        strides: (2, 4, 8, 16, 32); with output_stride 16 (2, 4, 8, 16, 16), with 8
            (2, 4, 8, 8, 8).
    Shapes:
        x [B, in_channels, H, W], H and W multiples of output_stride -> five maps
        [B, out_channels[i], H / strides[i], W / strides[i]].
    """

    def __init__(self, in_channels: int = 3, width: float = 1.0, output_stride: int = 32) -> None:
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        self.in_channels = in_channels
        stem = make_divisible(32 * width)
        self.stem = ConvBNAct(in_channels, stem, 3, 2)
        stages: list[nn.Module] = []
        ch, stride_now, dilation = stem, 2, 1
        channels, strides = [], []
        for i, (t, c, n, s) in enumerate(SETTINGS):
            out = make_divisible(c * width)
            if stride_now * s > output_stride:
                dilation *= s
                s = 1
            stride_now *= s
            blocks = []
            for j in range(n):
                blocks.append(InvertedResidual(ch, out, s if j == 0 else 1, t, dilation=dilation))
                ch = out
            stages.append(nn.Sequential(*blocks))
            if i in TAPS:
                channels.append(out)
                strides.append(stride_now)
        self.stages = nn.ModuleList(stages)
        self.out_channels, self.strides = tuple(channels), tuple(strides)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x [B, C, H, W] -> [B, out_channels[i], H / strides[i], W / strides[i]], i = 0..4."""
        feats = []
        x = self.stem(x)  # [B, stem, H/2, W/2]
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in TAPS:
                feats.append(x)
        return feats
