"""DeepLabV3+ on MobileNetV2 with the ASPP replaced by a 1x1 projection (for speed).

Changing ``output_stride`` only changes dilations and strides, never a weight shape, so a
checkpoint trained at output stride 16 loads into an output-stride-8 model for a finer
(slower) export, as the original mobile recipe did.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from segme.models.base import SegModel
from segme.models.blocks import ConvBNAct, SeparableConv, make_divisible, upsample_like
from segme.models.encoders import MobileNetV2Encoder
from segme.models.heads import SegmentationHead
from segme.models.registry import register_model


class DeepLabV3Plus(SegModel):
    """MobileNetV2 encoder, 1x1 projection of the deep features, stride-4 decoder.

    The deep features (stride ``output_stride``) are projected by a 1x1 conv, resized to the
    stride-4 low-level features (reduced by a 1x1 conv), concatenated with them and fused by
    two 3x3 separable convs; the 1-channel logits are resized x4 to the input.

    Args:
        in_channels: 3 for RGB, 4 with a previous-frame alpha plane.
        width: MobileNetV2 width multiplier (0.5 in the mobile portrait model).
        output_stride: 16 (train) or 8 (finer masks for about 3x the encoder MACs).
        decoder_channels: width of the projection and fusion convs; default 256 * width.
        low_level_channels: width of the reduced stride-4 skip; default 48 * width.
    Shapes:
        x [B, in_channels, H, W] with H, W multiples of ``output_stride`` -> logits [B, 1, H, W].
    """

    default_size = 256
    size_divisor = 16

    def __init__(
        self,
        in_channels: int = 3,
        width: float = 0.5,
        output_stride: int = 16,
        decoder_channels: int | None = None,
        low_level_channels: int | None = None,
    ) -> None:
        super().__init__()
        if output_stride not in (8, 16):
            raise ValueError(f"output_stride must be 16 or 8, got {output_stride}")
        self.in_channels = in_channels
        self.size_divisor = output_stride
        dec = decoder_channels or make_divisible(256 * width)
        low = low_level_channels or make_divisible(48 * width)
        self.encoder = MobileNetV2Encoder(in_channels, width, output_stride)
        ch = self.encoder.out_channels  # strides 2, 4, 8, then output_stride twice
        self.project = ConvBNAct(ch[4], dec, 1, act="relu")
        self.reduce = ConvBNAct(ch[1], low, 1, act="relu")
        self.fuse = nn.Sequential(SeparableConv(dec + low, dec), SeparableConv(dec, dec))
        self.head = SegmentationHead(dec, kernel_size=1)

    def outputs(self, x: torch.Tensor, aux: bool = True) -> dict[str, torch.Tensor]:
        """x [B, C, H, W] normalised -> {"logits": [B, 1, H, W]}."""
        feats = self.encoder(x)
        low = self.reduce(feats[1])  # [B, low, H/4, W/4]
        deep = upsample_like(self.project(feats[4]), low)  # [B, dec, H/4, W/4]
        y = self.fuse(torch.cat([deep, low], dim=1))  # [B, dec, H/4, W/4]
        return {"logits": upsample_like(self.head(y), x)}  # [B, 1, H, W]


@register_model
def deeplabv3plus(**kwargs) -> DeepLabV3Plus:
    return DeepLabV3Plus(**kwargs)
