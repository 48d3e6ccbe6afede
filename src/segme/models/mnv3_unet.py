"""MobileNetV3-small U-Net with a decoder of transition blocks and additive skips.

A transition block sums two branches: two depthwise-separable convs, and a 1x1 conv
(``SeparableResidual`` with ``project=True``). Each decoder stage ends at the width of the
skip it meets, so skips are added and no concat is needed.
"""

from __future__ import annotations

import torch

from segme.models.base import SegModel
from segme.models.decoders import AdditiveDecoder
from segme.models.encoders import MobileNetV3SmallEncoder
from segme.models.registry import register_model


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
        self.encoder = MobileNetV3SmallEncoder(in_channels, width, minimal)
        self.decoder = AdditiveDecoder(self.encoder.out_channels, act="relu" if minimal else "hswish",
                                       project=True, refine=refine)  # ends in the head

    def outputs(self, x: torch.Tensor, aux: bool = True) -> dict[str, torch.Tensor]:
        """x [B, C, H, W] normalised -> {"logits": [B, 1, H, W]}."""
        feats = self.encoder(x)  # [B, out_channels[i], H / 2**(i+1), W / 2**(i+1)], i = 0..4
        return {"logits": self.decoder(feats, x)}


@register_model
def mnv3_unet(**kwargs) -> MobileNetV3UNet:
    return MobileNetV3UNet(**kwargs)
