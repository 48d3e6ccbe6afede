"""Mobile-UNet: MobileNetV2 encoder with U-Net skips (Sathyan's portrait-segmentation family).

Two decoders: ``deconv`` upsamples with stride-2 transposed convolutions (3x faster on a phone
CPU in the original project), ``bilinear`` with bilinear resize followed by a 1x1 conv.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from segme.models.base import SegModel
from segme.models.blocks import ConvBNAct, InvertedResidual, make_divisible, upsample
from segme.models.encoders import MobileNetV2Encoder
from segme.models.heads import SegmentationHead
from segme.models.registry import register_model


class _Up(nn.Module):
    """x2 upsampling: transposed conv (``deconv``) or bilinear + 1x1 conv (``bilinear``)."""

    def __init__(self, in_ch: int, out_ch: int, mode: str) -> None:
        super().__init__()
        self.mode = mode
        if mode == "deconv":
            self.conv = nn.Sequential(
                nn.ConvTranspose2d(in_ch, out_ch, 2, stride=2, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU6(inplace=True),
            )
        else:
            self.conv = ConvBNAct(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "deconv":
            return self.conv(x)
        return self.conv(upsample(x, 2))


class MobileUNet(SegModel):
    """MobileNetV2 (x``width``) encoder, U-Net decoder with concatenated skips.

    Args:
        in_channels: 3 (RGB) or 4 (RGB + previous-frame alpha).
        width: encoder width multiplier; the decoder scales with it (0.5 = the original).
        decoder: ``"deconv"`` (transposed conv) or ``"bilinear"`` (resize + conv).

    Input float32 [B, C, H, W] with H, W multiples of 32; logits [B, 1, H, W].
    """

    default_size = 128
    size_divisor = 32

    def __init__(self, in_channels: int = 3, width: float = 0.5, decoder: str = "deconv") -> None:
        super().__init__()
        if decoder not in ("deconv", "bilinear"):
            raise ValueError(f"decoder must be 'deconv' or 'bilinear', got {decoder!r}")
        self.in_channels = in_channels
        self.encoder = MobileNetV2Encoder(in_channels, width)
        skips = self.encoder.out_channels  # strides 2, 4, 8, 16, 32
        dec = [make_divisible(c * width) for c in (192, 128, 64, 48, 32)]  # strides 16..1
        self.ups = nn.ModuleList()
        self.fuse = nn.ModuleList()
        ch = skips[-1]
        for i, skip_ch in enumerate(reversed(skips[:-1])):  # 16, 8, 4, 2
            self.ups.append(_Up(ch, dec[i], decoder))
            # expand 1: a depthwise-separable mix of upsampled and skip channels
            self.fuse.append(InvertedResidual(dec[i] + skip_ch, dec[i], expand=1))
            ch = dec[i]
        self.head_up = _Up(ch, dec[-1], decoder)
        self.head = SegmentationHead(dec[-1], kernel_size=3)

    def outputs(self, x: torch.Tensor, aux: bool = True) -> dict[str, torch.Tensor]:
        feats = self.encoder(x)  # [B, C_i, H/2^(i+1), W/2^(i+1)] for i = 0..4
        y = feats[-1]
        for up, fuse, skip in zip(self.ups, self.fuse, reversed(feats[:-1])):
            y = fuse(torch.cat([up(y), skip], 1))  # [B, dec[i], h_skip, w_skip]
        return {"logits": self.head(self.head_up(y))}  # [B, 1, H, W]


@register_model
def mobile_unet(**kwargs) -> MobileUNet:
    return MobileUNet(**kwargs)
