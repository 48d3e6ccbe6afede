"""MobileNetV3-small (Howard et al. 2019) as a feature extractor, with its "minimal" variant.

Used by the MobileNetV3 U-Net. No ImageNet weights ship for it: the family trains from
scratch (the built-in portrait model did).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from segme.models.blocks import ConvBNAct, InvertedResidual, make_divisible
from segme.models.encoders.base import Encoder

# kernel, expansion channels, output channels, squeeze-excite, activation, stride
# (Howard et al. 2019, "Searching for MobileNetV3", table 2: MobileNetV3-small)
SMALL = [
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hswish", 2),
    (5, 240, 40, True, "hswish", 1),
    (5, 240, 40, True, "hswish", 1),
    (5, 120, 48, True, "hswish", 1),
    (5, 144, 48, True, "hswish", 1),
    (5, 288, 96, True, "hswish", 2),
    (5, 576, 96, True, "hswish", 1),
    (5, 576, 96, True, "hswish", 1),
]
# index of the block after which the stride-4, 8, 16 and 32 features are taken
TAPS = (0, 2, 7, 10)


class MobileNetV3SmallEncoder(Encoder):
    """MobileNetV3-small returning five feature maps, at strides 2, 4, 8, 16 and 32.

    The final 1x1 conv to 576 channels and the classifier are dropped: the decoder only
    needs the block outputs.

    Args:
        in_channels: 3 for RGB, 4 with a previous-frame alpha plane.
        width: multiplier on every channel count, expansions included.
        minimal: MobileNetV3-small-minimal: 3x3 kernels only, no squeeze-excite, ReLU
            instead of hard-swish (faster on CPUs and quantises more easily).
    Attributes:
        out_channels: 16, 16, 24, 48, 96 at width 1.
        strides: (2, 4, 8, 16, 32).
    Shapes:
        x [B, in_channels, H, W], H and W multiples of 32 -> five maps
        [B, out_channels[i], H / strides[i], W / strides[i]].
    """

    def __init__(self, in_channels: int = 3, width: float = 1.0, minimal: bool = False) -> None:
        super().__init__()
        self.in_channels = in_channels
        stem = make_divisible(16 * width)
        self.stem = ConvBNAct(in_channels, stem, 3, 2, act="relu" if minimal else "hswish")
        channels, strides = [stem], [2]
        blocks: list[nn.Module] = []
        ch, stride_now = stem, 2
        for i, (k, exp, out, se, act, s) in enumerate(SMALL):
            if minimal:
                k, se, act = 3, False, "relu"
            out = make_divisible(out * width)
            hidden = make_divisible(exp * width)
            blocks.append(InvertedResidual(ch, out, s, kernel=k, act=act, se=se, hidden=hidden))
            ch, stride_now = out, stride_now * s
            if i in TAPS:
                channels.append(out)
                strides.append(stride_now)
        self.blocks = nn.ModuleList(blocks)
        self.out_channels, self.strides = tuple(channels), tuple(strides)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x [B, C, H, W] -> [B, out_channels[i], H / strides[i], W / strides[i]], i = 0..4."""
        x = self.stem(x)  # [B, out_channels[0], H/2, W/2]
        feats = [x]
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in TAPS:
                feats.append(x)
        return feats
