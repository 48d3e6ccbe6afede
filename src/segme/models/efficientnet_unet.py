"""EfficientNet-Lite U-Net: an ImageNet-pretrained encoder under the zoo's additive decoder.

The encoder (Lite0 to Lite2, ``models/encoders/efficientnet_lite.py``) starts from its
ImageNet weights with ``segme train --pretrained``: features that already tell a person from
a shop window or foliage, which the portrait sets alone (under 3,000 photos of one framing)
cannot teach. The decoder is the MobileNetV3 U-Net's (transition blocks, additive skips), so
the two families differ only in what they stand on.
"""

from __future__ import annotations

import torch

from segme.models.base import SegModel
from segme.models.decoders import AdditiveDecoder
from segme.models.encoders import EfficientNetLite
from segme.models.encoders.efficientnet_lite import MEAN, STD
from segme.models.registry import register_model


class EfficientNetUNet(SegModel):
    """EfficientNet-Lite encoder, transition-block decoder with additive skips; 256 default.

    Args:
        variant: EfficientNet-Lite 0, 1 or 2 (4.0 M, 4.7 M, 5.3 M parameters in the encoder
            without its classifier).
        in_channels: 3 for RGB, 4 with a previous-frame alpha plane.
        refine: the decoder's last block at stride 2 (see ``AdditiveDecoder``).
    Shapes:
        x [B, in_channels, H, W] with H, W multiples of 32, normalised as
        ``(RGB - 127) / 128`` (the card says so) -> logits [B, 1, H, W].
    """

    default_size = 256
    size_divisor = 32
    mean, std = MEAN, STD

    def __init__(self, variant: int = 0, in_channels: int = 3, refine: bool | str = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.encoder = EfficientNetLite(variant, in_channels)
        self.decoder = AdditiveDecoder(self.encoder.out_channels, act="relu6", project=True,
                                       refine=refine)  # ends in the head

    def outputs(self, x: torch.Tensor, aux: bool = True) -> dict[str, torch.Tensor]:
        """x [B, C, H, W] normalised -> {"logits": [B, 1, H, W]}."""
        feats = self.encoder(x)  # [B, out_channels[i], H / 2**(i+1), W / 2**(i+1)], i = 0..4
        return {"logits": self.decoder(feats, x)}

    def load_pretrained(self) -> str:
        return "encoder: " + self.encoder.load_pretrained()


@register_model
def efficientnet_unet(**kwargs) -> EfficientNetUNet:
    return EfficientNetUNet(**kwargs)
