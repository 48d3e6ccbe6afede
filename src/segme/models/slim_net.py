"""Slim-Net: a small ENet-style U-Net after MediaPipe's hair segmentation model.

The stem takes the 512x512 input to stride 4 in two cheap convs, because full-resolution layers
dominate the cost at that size. The body is bottleneck blocks (1x1 reduce, depthwise 3x3,
possibly dilated, linear 1x1 expand, residual add) with PReLU everywhere; dilation rather than
more downsampling gives the context. Transposed convs bring the features back to full
resolution inside the model, with additive U-Net skips on the way.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from segme.models.base import SegModel
from segme.models.blocks import ConvBNAct, activation, make_divisible
from segme.models.registry import register_model


class Bottleneck(nn.Module):
    """1x1 reduce -> depthwise 3x3 (dilated) -> linear 1x1 expand, plus shortcut, PReLU.

    A downsampling block reduces with a 2x2 stride-2 conv (as ENet does) and its shortcut is
    a 2x2 max pool, followed by a 1x1 conv where the channel count changes.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        stride: 1, or 2 to halve the spatial size.
        dilation: dilation of the depthwise conv.
        ratio: out_ch / bottleneck width.
    Shapes:
        [B, in_ch, H, W] -> [B, out_ch, H / stride, W / stride] (H, W even when stride 2)
    """

    def __init__(
        self, in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1, ratio: int = 2
    ) -> None:
        super().__init__()
        mid = make_divisible(out_ch / ratio)
        self.body = nn.Sequential(
            ConvBNAct(in_ch, mid, 2 if stride == 2 else 1, stride, act="prelu"),
            ConvBNAct(mid, mid, 3, dilation=dilation, groups=mid, act="prelu"),
            ConvBNAct(mid, out_ch, 1, act="none"),
        )
        short: list[nn.Module] = []
        if stride == 2:
            short.append(nn.MaxPool2d(2))
        if in_ch != out_ch:
            short.append(ConvBNAct(in_ch, out_ch, 1, act="none"))
        self.shortcut = nn.Sequential(*short)  # empty Sequential is the identity
        self.act = activation("prelu", out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class UpBlock(nn.Module):
    """2x2 stride-2 transposed conv + BN + PReLU, add the skip, then a bottleneck.

    Shapes:
        x [B, in_ch, h, w], skip [B, out_ch, 2h, 2w] -> [B, out_ch, 2h, 2w]
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.up = nn.Sequential(
            nn.ConvTranspose2d(in_ch, out_ch, 2, stride=2, bias=False),
            nn.BatchNorm2d(out_ch),
            activation("prelu", out_ch),
        )
        self.refine = Bottleneck(out_ch, out_ch, ratio=4)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.refine(self.up(x) + skip)


class SlimNet(SegModel):
    """Slim-Net: stride-4 stem, dilated bottleneck encoder to stride 16, transposed-conv decoder.

    Args:
        in_channels: 3 for RGB, 4 with a previous-frame alpha plane (as MediaPipe's hair
            model uses).
        width: multiplier on the base widths (16, 32, 64, 160) at strides 2, 4, 8, 16.
    Shapes:
        x [B, in_channels, H, W] with H, W multiples of 16 -> logits [B, 1, H, W].
    """

    default_size = 512
    size_divisor = 16
    BASE_WIDTHS = (16, 32, 64, 160)  # at strides 2, 4, 8, 16
    DILATIONS = (1, 2, 4, 8, 1, 2, 4, 8)  # stride-16 blocks: a receptive field of ~the input

    def __init__(self, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        self.in_channels = in_channels
        c2, c4, c8, c16 = (make_divisible(c * width) for c in self.BASE_WIDTHS)
        # a dense 3x3 at stride 2, then a depthwise-separable stride-2 conv: cheap at 512 px
        self.stem1 = ConvBNAct(in_channels, c2, 3, 2, act="prelu")  # stride 2
        self.stem2 = nn.Sequential(
            ConvBNAct(c2, c2, 3, 2, groups=c2, act="prelu"),
            ConvBNAct(c2, c4, 1, act="prelu"),
        )  # stride 4
        # ENet's 4x reduction where pixels are many, 2x at stride 16 where the capacity is
        self.stage4 = nn.Sequential(Bottleneck(c4, c4, ratio=4), Bottleneck(c4, c4, ratio=4))
        self.stage8 = nn.Sequential(
            Bottleneck(c4, c8, stride=2, ratio=4),
            *(Bottleneck(c8, c8, dilation=d, ratio=4) for d in (1, 2, 1)),
        )
        self.stage16 = nn.Sequential(
            Bottleneck(c8, c16, stride=2),
            *(Bottleneck(c16, c16, dilation=d) for d in self.DILATIONS),
        )
        self.up8 = UpBlock(c16, c8)
        self.up4 = UpBlock(c8, c4)
        self.up2 = UpBlock(c4, c2)
        # overlapping 4x4 kernel (not 2x2) so the full-resolution logits are not blocky
        self.head = nn.ConvTranspose2d(c2, 1, 4, stride=2, padding=1)

    def outputs(self, x: torch.Tensor, aux: bool = True) -> dict[str, torch.Tensor]:
        """x [B, C, H, W] normalised -> {"logits": [B, 1, H, W]}."""
        s2 = self.stem1(x)  # [B, c2, H/2, W/2]
        s4 = self.stage4(self.stem2(s2))  # [B, c4, H/4, W/4]
        s8 = self.stage8(s4)  # [B, c8, H/8, W/8]
        y = self.stage16(s8)  # [B, c16, H/16, W/16]
        y = self.up2(self.up4(self.up8(y, s8), s4), s2)  # [B, c2, H/2, W/2]
        return {"logits": self.head(y)}


@register_model
def slim_net(**kwargs) -> SlimNet:
    return SlimNet(**kwargs)
