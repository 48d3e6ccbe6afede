"""MODNet: trimap-free portrait matting by objective decomposition (Ke et al. 2020).

Three branches on a MobileNetV2 backbone:

- semantic (low resolution): squeeze-excitation on the stride-32 features, merged with the
  stride-16 features, refined at 1/16 and 1/8; its 1/8 features feed the other branches and a
  1-channel head predicts the coarse matte (``semantic_logits``, training only);
- detail (high resolution): the image at 1/2 and 1/4, the stride-2 and stride-4 encoder
  features and the upsampled semantic features; its 1/2 features feed fusion and a head at
  full resolution predicts the boundary detail (``detail_logits``, training only);
- fusion: semantic features upsampled to 1/2, concatenated with the detail features, then
  with the full-resolution image, produce the final ``logits``.

Conv blocks normalise with IBNorm: half the channels with BatchNorm (statistics of the data
set: what a person looks like) and half with InstanceNorm (statistics of this image: robust
to its exposure and colour cast).

Differences from the reference code, each for a reason:
- ``semantic_logits`` is at 1/8 (the reference's head had stride 2, giving 1/16), which
  matches the 1/8 features it is computed from and the loss's 1/8 target;
- the stride-16 encoder features are concatenated into the semantic branch (the reference
  used only the stride-32 ones, upsampled); MobileNetV2 here ends at 320 channels, not 1280;
- the image is downsampled for the detail branch by average pooling instead of bilinear
  resize: anti-aliased and a plain AveragePool in ONNX;
- InstanceNorm is affine (the reference used ``affine=False``), so each half can rescale.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from segme.models.base import SegModel
from segme.models.blocks import SqueezeExcite, upsample
from segme.models.encoders import MobileNetV2Encoder
from segme.models.heads import SegmentationHead
from segme.models.registry import register_model


class InstanceNorm(nn.Module):
    """Affine instance normalisation written with reductions.

    Same maths as ``nn.InstanceNorm2d(affine=True)``, but torch's version reshapes by the
    batch size, which pins the exported ONNX batch axis to 1; means over (H, W) keep it free.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean((2, 3), keepdim=True)
        var = (x - mean).pow(2).mean((2, 3), keepdim=True)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


class IBNorm(nn.Module):
    """BatchNorm on the first ``channels // 2`` channels, InstanceNorm on the rest.

    Input and output [B, C, H, W]. The instance half needs H * W > 1 to be meaningful.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn_channels = channels // 2
        self.bn = nn.BatchNorm2d(self.bn_channels)
        self.inorm = InstanceNorm(channels - self.bn_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x[:, : self.bn_channels], x[:, self.bn_channels :]
        return torch.cat([self.bn(a), self.inorm(b)], 1)


class ConvIBNReLU(nn.Sequential):
    """Conv2d -> IBNorm -> ReLU. No conv bias: both norm halves subtract a per-channel mean."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False),
            IBNorm(out_ch),
            nn.ReLU(inplace=True),
        )


class MODNet(SegModel):
    """MODNet portrait matting network.

    Args:
        in_channels: 3 (RGB) or 4 (RGB + previous-frame alpha).
        width: MobileNetV2 width multiplier (1.0 = the paper's backbone; 0.5 or 0.75 for speed).
        hr_channels: channels of the high-resolution detail and fusion branches (32 in the
            paper).

    Input float32 [B, C, H, W] with H, W multiples of 32. ``forward_train`` returns
    ``logits`` [B, 1, H, W] (fused matte), ``semantic_logits`` [B, 1, H/8, W/8] and
    ``detail_logits`` [B, 1, H, W]; ``forward`` returns alpha [B, 1, H, W] and skips the
    semantic and detail heads (their features still feed fusion).
    """

    default_size = 512
    size_divisor = 32
    loss_recipe = "modnet"

    def __init__(self, in_channels: int = 3, width: float = 1.0, hr_channels: int = 32) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.encoder = MobileNetV2Encoder(in_channels, width)
        e2, e4, e8, e16, e32 = self.encoder.out_channels  # 16, 24, 32, 96, 320 at width 1
        hr = hr_channels

        # semantic branch (1/32 -> 1/8)
        self.se = SqueezeExcite(e32, reduction=4)
        self.lr16 = ConvIBNReLU(e32 + e16, e16, 5)
        self.lr8 = ConvIBNReLU(e16, e8, 5)
        self.semantic_head = SegmentationHead(e8, kernel_size=3)

        # detail branch (1/2 and 1/4 -> full resolution)
        self.to_hr2 = ConvIBNReLU(e2, hr, 1)
        self.hr2_down = ConvIBNReLU(hr + 3, hr, 3, stride=2)
        self.to_hr4 = ConvIBNReLU(e4, hr, 1)
        self.hr4_mix = ConvIBNReLU(2 * hr, 2 * hr, 3)
        self.hr4 = nn.Sequential(
            ConvIBNReLU(2 * hr + e8 + 3, 2 * hr, 3),
            ConvIBNReLU(2 * hr, 2 * hr, 3),
            ConvIBNReLU(2 * hr, hr, 3),
        )
        self.hr2 = nn.Sequential(
            ConvIBNReLU(2 * hr, 2 * hr, 3),
            ConvIBNReLU(2 * hr, hr, 3),
            ConvIBNReLU(hr, hr, 3),
            ConvIBNReLU(hr, hr, 3),
        )
        self.detail_head = nn.Sequential(ConvIBNReLU(hr + 3, hr, 3), nn.Conv2d(hr, 1, 1))

        # fusion branch
        self.f_lr4 = ConvIBNReLU(e8, hr, 5)
        self.f_2 = ConvIBNReLU(2 * hr, hr, 3)
        self.f_head = nn.Sequential(ConvIBNReLU(hr + 3, hr // 2, 3), nn.Conv2d(hr // 2, 1, 1))

    def outputs(self, x: torch.Tensor, aux: bool = True) -> dict[str, torch.Tensor]:
        img = x[:, :3]  # colour planes only feed the detail/fusion branches
        f2, f4, _, f16, f32 = self.encoder(x)

        # semantic: [B, e32, H/32] -> [B, e8, H/8]
        lr16 = self.lr16(torch.cat([upsample(self.se(f32), 2), f16], 1))  # [B, e16, H/16, W/16]
        lr8 = self.lr8(upsample(lr16, 2))  # [B, e8, H/8, W/8]

        # detail: build 1/4 features from image + encoder + semantics, then refine at 1/2
        img2 = F.avg_pool2d(img, 2)  # [B, 3, H/2, W/2]
        img4 = F.avg_pool2d(img2, 2)  # [B, 3, H/4, W/4]
        enc2 = self.to_hr2(f2)  # [B, hr, H/2, W/2]
        h4 = self.hr2_down(torch.cat([img2, enc2], 1))  # [B, hr, H/4, W/4]
        h4 = self.hr4_mix(torch.cat([h4, self.to_hr4(f4)], 1))  # [B, 2hr, H/4, W/4]
        lr4 = upsample(lr8, 2)  # [B, e8, H/4, W/4]
        h4 = self.hr4(torch.cat([h4, lr4, img4], 1))  # [B, hr, H/4, W/4]
        h2 = self.hr2(torch.cat([upsample(h4, 2), enc2], 1))  # [B, hr, H/2, W/2]

        # fusion: semantic features at 1/2 + detail features -> full-resolution matte
        s2 = upsample(self.f_lr4(lr4), 2)  # [B, hr, H/2, W/2]
        f = upsample(self.f_2(torch.cat([s2, h2], 1)), 2)  # [B, hr, H, W]
        out = {"logits": self.f_head(torch.cat([f, img], 1))}  # [B, 1, H, W]
        if aux:
            out["semantic_logits"] = self.semantic_head(lr8)  # [B, 1, H/8, W/8]
            h1 = upsample(h2, 2)  # [B, hr, H, W]
            out["detail_logits"] = self.detail_head(torch.cat([h1, img], 1))  # [B, 1, H, W]
        return out


@register_model
def modnet(**kwargs) -> MODNet:
    return MODNet(**kwargs)
