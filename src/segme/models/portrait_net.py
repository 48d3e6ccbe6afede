"""PortraitNet (Zhang et al. 2019): MobileNetV2 encoder, residual depthwise decoder.

Each decoder stage is a refined residual block (two depthwise-separable convs on one branch,
identity or a 1x1 projection on the other) followed by a depthwise stride-2 transposed conv;
encoder skips are ADDED, which keeps the decoder as narrow as the encoder stage it meets.

Training adds a boundary head (``boundary_logits``, supervised with focal loss on edges
computed from the mask). It shares the last decoder features with the main head and is not
part of ``forward``, so the exported graph does not contain it.

With ``in_channels=4`` the 4th plane is the previous frame's alpha in [0, 1] (video prior).

Difference from the reference code: the stride-2 encoder features are also added as a skip
(the reference skips them); they are the cheapest source of edge detail at that scale.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from segme.models.base import SegModel
from segme.models.blocks import ConvBNAct, SeparableConv, make_divisible
from segme.models.encoders import MobileNetV2Encoder
from segme.models.heads import SegmentationHead
from segme.models.registry import register_model


class RefinedResidual(nn.Module):
    """PortraitNet D-block: [dw3x3-pw1x1] x2 on one branch, identity or 1x1 on the other.

    Input [B, in_ch, H, W] -> output [B, out_ch, H, W].
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            SeparableConv(in_ch, out_ch, act="relu"),
            ConvBNAct(out_ch, out_ch, 3, groups=out_ch, act="relu"),
            ConvBNAct(out_ch, out_ch, 1, act="none"),  # linear before the residual sum
        )
        self.shortcut = (
            nn.Identity() if in_ch == out_ch else ConvBNAct(in_ch, out_ch, 1, act="none")
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.block(x) + self.shortcut(x))


def _deconv2x(channels: int) -> nn.ConvTranspose2d:
    # depthwise 4x4 stride-2 transposed conv: learned x2 upsampling for 16 weights per channel;
    # kernel 4 (not 2) makes neighbouring outputs overlap, which avoids checkerboard blocks
    return nn.ConvTranspose2d(channels, channels, 4, 2, 1, groups=channels, bias=False)


class PortraitNet(SegModel):
    """PortraitNet portrait segmenter.

    Args:
        in_channels: 3 (RGB) or 4 (RGB + previous-frame alpha in [0, 1]).
        width: MobileNetV2 width multiplier (1.0 = the paper; 0.5 for speed). The decoder
            follows the encoder's channel counts, so it scales with it.

    Input float32 [B, C, H, W] with H, W multiples of 32. ``forward_train`` returns ``logits``
    and ``boundary_logits``, both [B, 1, H, W]; ``forward`` returns alpha [B, 1, H, W] only.
    """

    default_size = 224
    size_divisor = 32

    def __init__(self, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.encoder = MobileNetV2Encoder(in_channels, width)
        enc = self.encoder.out_channels  # strides 2, 4, 8, 16, 32: 16, 24, 32, 96, 320 at width 1
        last = make_divisible(8 * width)
        # stage i maps the stride-2^(5-i) features to the next-shallower skip's channel count
        outs = [enc[3], enc[2], enc[1], enc[0], last]  # strides 16, 8, 4, 2, 1 after upsampling
        ins = [enc[4], *outs[:-1]]
        self.blocks = nn.ModuleList(RefinedResidual(i, o) for i, o in zip(ins, outs, strict=True))
        self.ups = nn.ModuleList(_deconv2x(o) for o in outs)
        self.head = SegmentationHead(last, kernel_size=3)
        self.boundary_head = SegmentationHead(last, kernel_size=3)

    def outputs(self, x: torch.Tensor, aux: bool = True) -> dict[str, torch.Tensor]:
        feats = self.encoder(x)  # [B, enc[i], H/2^(i+1), W/2^(i+1)] for i = 0..4
        skips = [*reversed(feats[:-1]), None]  # added after the stride 16, 8, 4, 2 stages
        y = feats[-1]  # [B, enc[4], H/32, W/32]
        for block, up, skip in zip(self.blocks, self.ups, skips, strict=True):
            y = up(block(y))  # x2 resolution, channels of the next skip
            if skip is not None:
                y = y + skip
        out = {"logits": self.head(y)}  # [B, 1, H, W]
        if aux:
            out["boundary_logits"] = self.boundary_head(y)  # [B, 1, H, W]
        return out


@register_model
def portrait_net(**kwargs) -> PortraitNet:
    return PortraitNet(**kwargs)
