"""MobileNetV3-small U-Net with a decoder of transition blocks and additive skips.

A transition block sums two branches: two depthwise-separable convs, and a 1x1 conv
(``SeparableResidual`` with ``project=True``). Each decoder stage ends at the width of the
skip it meets, so skips are added and no concat is needed.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from segme.models.base import SegModel
from segme.models.blocks import (
    AdditiveDecoder,
    ConvBNAct,
    InvertedResidual,
    make_divisible,
)
from segme.models.registry import register_model

# kernel, expansion channels, output channels, squeeze-excite, activation, stride
# (Howard et al. 2019, "Searching for MobileNetV3", table 2: MobileNetV3-small)
_SMALL = [
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
_TAPS = (0, 2, 7, 10)


class MobileNetV3SmallEncoder(nn.Module):
    """MobileNetV3-small feature extractor returning features at strides 2, 4, 8, 16, 32.

    The final 1x1 conv to 576 channels and the classifier are dropped: the decoder only
    needs the block outputs.

    Args:
        in_channels: 3 for RGB, 4 with a previous-frame alpha plane.
        width: multiplier on every channel count, expansions included.
        minimal: MobileNetV3-small-minimal: 3x3 kernels only, no squeeze-excite, ReLU
            instead of hard-swish (faster on CPUs and quantises more easily).
    Attributes:
        channels: channels of the five returned feature maps.
    """

    def __init__(self, in_channels: int = 3, width: float = 1.0, minimal: bool = False) -> None:
        super().__init__()
        stem = make_divisible(16 * width)
        self.stem = ConvBNAct(in_channels, stem, 3, 2, act="relu" if minimal else "hswish")
        self.channels = [stem]
        blocks: list[nn.Module] = []
        ch = stem
        for i, (k, exp, out, se, act, s) in enumerate(_SMALL):
            if minimal:
                k, se, act = 3, False, "relu"
            out = make_divisible(out * width)
            hidden = make_divisible(exp * width)
            blocks.append(InvertedResidual(ch, out, s, kernel=k, act=act, se=se, hidden=hidden))
            ch = out
            if i in _TAPS:
                self.channels.append(out)
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x [B, C, H, W] -> five maps [B, channels[i], H / 2**(i+1), W / 2**(i+1)]."""
        x = self.stem(x)
        feats = [x]
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in _TAPS:
                feats.append(x)
        return feats


class MobileNetV3UNet(SegModel):
    """MobileNetV3-small encoder, transition-block decoder, additive skips; 224x224 default.

    Args:
        in_channels: 3 for RGB, 4 with a previous-frame alpha plane.
        width: channel multiplier for encoder and decoder.
        variant: "small" (SE, hard-swish, 5x5 kernels) or "minimal" (none of those).
        refine: the decoder's last block at stride 2 (``AdditiveDecoder``): True (the
            full block), "sep" or "dw" (lighter ones), False (none: about a fifth faster
            on CPU, the price of a 224 -> 256 input).
    Shapes:
        x [B, in_channels, H, W] with H, W multiples of 32 -> logits [B, 1, H, W].
    """

    default_size = 224
    size_divisor = 32

    def __init__(self, in_channels: int = 3, width: float = 1.0, variant: str = "small",
                 refine: bool | str = True) -> None:
        super().__init__()
        if variant not in ("small", "minimal"):
            raise ValueError(f"variant must be 'small' or 'minimal', got {variant!r}")
        self.in_channels = in_channels
        minimal = variant == "minimal"
        act = "relu" if minimal else "hswish"
        self.encoder = MobileNetV3SmallEncoder(in_channels, width, minimal)
        ch = self.encoder.channels
        self.decoder = AdditiveDecoder(ch, act=act, project=True, refine=refine)

    def outputs(self, x: torch.Tensor, aux: bool = True) -> dict[str, torch.Tensor]:
        """x [B, C, H, W] normalised -> {"logits": [B, 1, H, W]}."""
        feats = self.encoder(x)
        return {"logits": self.decoder(feats, x)}  # [B, 1, H, W]


@register_model
def mnv3_unet(**kwargs) -> MobileNetV3UNet:
    return MobileNetV3UNet(**kwargs)
