"""SINet: extremely lightweight portrait segmentation (Park et al. 2019), about 87 K parameters.

The encoder is built from spatial-squeeze (S2) modules: a grouped 1x1 reduction feeds two
branches, each of which average-pools the features (by 1, 2 or 4), runs a depthwise conv,
PReLU and a pointwise conv at that low resolution and upsamples back; the branches are
concatenated. Pooling buys a large receptive field for almost no parameters or MACs.

The decoder is the paper's information-blocking scheme: the coarse 1/8 prediction (returned as
``aux_logits`` for the auxiliary loss) is upsampled, and its confidence ``max(p, 1 - p)`` blocks
the high-resolution 1/4 skip where the coarse prediction is already certain, so the skip only
contributes around uncertain regions, i.e. person boundaries.

Differences from the reference code, each for a reason:
- one logit channel with a sigmoid instead of two with a softmax (the segme contract);
- no channel shuffle inside the S2 module: every branch sees the whole shuffled tensor and
  applies only per-channel ops (pool, depthwise conv, BN, PReLU) before a dense 1x1 conv, so a
  fixed channel permutation is absorbed by the weights and changes nothing the network can
  express; dropping it removes a reshape/transpose pair per module from the exported graph;
- bilinear upsampling uses ``align_corners=False`` (the reference used ``True``);
- the gate is computed from the upsampled coarse logits themselves (no BatchNorm in between),
  so the confidence that blocks the skip is the one the auxiliary loss calibrates;
- squeeze-excitation uses the shared sigmoid-gated block instead of a PReLU gate.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from segme.models.base import SegModel
from segme.models.blocks import ConvBNAct, SqueezeExcite, make_divisible, upsample
from segme.models.registry import register_model

# (kernel, pool) of the two branches of each S2 module: 2 in stage 2, then 8 in stage 3
# (Park et al. 2019, table 1 / reference code).
S2_CONFIG: list[tuple[tuple[int, int], tuple[int, int]]] = [
    ((3, 1), (5, 1)),
    ((3, 1), (3, 1)),
    ((3, 1), (5, 1)),
    ((3, 1), (3, 1)),
    ((5, 1), (3, 2)),
    ((5, 2), (3, 4)),
    ((3, 1), (3, 1)),
    ((5, 1), (5, 1)),
    ((3, 2), (3, 4)),
    ((3, 1), (5, 2)),
]
STAGE2_BLOCKS = 2


class S2Branch(nn.Module):
    """Spatial-squeeze branch: avg-pool by ``pool`` -> depthwise kxk -> PReLU -> 1x1 -> upsample.

    Input and output [B, C, H, W]; H and W must be multiples of ``pool``.
    """

    def __init__(self, channels: int, kernel: int, pool: int) -> None:
        super().__init__()
        self.pool = pool
        self.dw = nn.Sequential(
            nn.Conv2d(channels, channels, kernel, 1, kernel // 2, groups=channels, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.act = nn.PReLU(channels)
        self.pw = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.avg_pool2d(x, self.pool) if self.pool > 1 else x  # [B, C, H/p, W/p]
        y = self.pw(self.act(self.dw(y)))
        if self.pool > 1:
            y = upsample(y, self.pool)  # back to [B, C, H, W]
        return self.bn(y)


class S2Module(nn.Module):
    """Grouped 1x1 reduction to ``out_ch / 2``, two S2 branches concatenated, BN + PReLU.

    Args:
        in_ch: input channels (even: the reduction has two groups).
        out_ch: output channels (multiple of 4).
        config: ``((kernel, pool), (kernel, pool))`` of the two branches.
        residual: add the input (needs ``in_ch == out_ch``).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        config: tuple[tuple[int, int], tuple[int, int]],
        residual: bool = True,
    ) -> None:
        super().__init__()
        if residual and in_ch != out_ch:
            raise ValueError(f"a residual S2 module needs in_ch == out_ch, got {in_ch}, {out_ch}")
        mid = out_ch // 2
        self.reduce = nn.Conv2d(in_ch, mid, 1, groups=2, bias=False)
        self.branches = nn.ModuleList(S2Branch(mid, k, p) for k, p in config)
        self.residual = residual
        self.out = nn.Sequential(nn.BatchNorm2d(out_ch), nn.PReLU(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.reduce(x)  # [B, out/2, H, W]
        y = torch.cat([b(y) for b in self.branches], 1)  # [B, out, H, W]
        if self.residual:
            y = y + x
        return self.out(y)


class SEDownsample(nn.Module):
    """Stride-2 depthwise 3x3 -> squeeze-excitation -> pointwise -> BN -> PReLU."""

    def __init__(self, in_ch: int, out_ch: int, reduction: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(in_ch, in_ch, 3, 2, 1, groups=in_ch, bias=False)
        self.se = SqueezeExcite(in_ch, reduction)
        self.pw = ConvBNAct(in_ch, out_ch, 1, act="prelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.se(self.dw(x)))  # [B, out, H/2, W/2]


class SINet(SegModel):
    """SINet portrait segmenter.

    Args:
        in_channels: 3 (RGB) or 4 (RGB + previous-frame alpha).
        width: channel multiplier; 1.0 is the paper's model (~87 K parameters).

    Input float32 [B, C, H, W] with H, W multiples of 32 (stride 8 times the largest pooling
    of 4 inside the S2 modules). ``forward_train`` returns ``logits`` [B, 1, H, W] and
    ``aux_logits`` [B, 1, H/8, W/8], the coarse prediction that also drives the decoder's
    information blocking (so ``forward`` computes it too).
    """

    default_size = 224
    size_divisor = 32

    def __init__(self, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        self.in_channels = in_channels
        # channels at strides 2, 4, 8 (stage 2 output) and 8 (stage 3 output); multiples of 4
        # so every S2 module halves into an even number of channels for its 2-group reduction.
        c1, c2, c3, c4 = (make_divisible(c * width, 4) for c in (12, 16, 48, 96))
        cfg = S2_CONFIG
        self.stem = ConvBNAct(in_channels, c1, 3, 2, act="prelu")  # 1/2
        self.down2 = SEDownsample(c1, c2, reduction=1)  # 1/4
        self.stage2 = nn.Sequential(
            S2Module(c2, c3, cfg[0], residual=False),
            *(S2Module(c3, c3, c) for c in cfg[1:STAGE2_BLOCKS]),
        )
        self.merge2 = nn.Sequential(nn.BatchNorm2d(c2 + c3), nn.PReLU(c2 + c3))
        self.down3 = SEDownsample(c2 + c3, c3, reduction=2)  # 1/8
        self.stage3 = nn.Sequential(
            S2Module(c3, c4, cfg[STAGE2_BLOCKS], residual=False),
            *(S2Module(c4, c4, c) for c in cfg[STAGE2_BLOCKS + 1 :]),
        )
        self.merge3 = nn.Sequential(nn.BatchNorm2d(c3 + c4), nn.PReLU(c3 + c4))
        self.coarse = nn.Conv2d(c3 + c4, 1, 1)  # aux_logits at 1/8
        self.skip = ConvBNAct(c3, 1, 1, act="prelu")  # 1/4 stage-2 features -> one plane
        self.dec_bn = nn.BatchNorm2d(1)
        self.head = nn.Conv2d(1, 1, 3, padding=1)

    def outputs(self, x: torch.Tensor, aux: bool = True) -> dict[str, torch.Tensor]:
        x1 = self.stem(x)  # [B, c1, H/2, W/2]
        x2_0 = self.down2(x1)  # [B, c2, H/4, W/4]
        x2 = self.stage2(x2_0)  # [B, c3, H/4, W/4]
        x3_0 = self.down3(self.merge2(torch.cat([x2_0, x2], 1)))  # [B, c3, H/8, W/8]
        x3 = self.stage3(x3_0)  # [B, c4, H/8, W/8]
        aux = self.coarse(self.merge3(torch.cat([x3_0, x3], 1)))  # [B, 1, H/8, W/8]

        coarse = upsample(aux, 2)  # [B, 1, H/4, W/4]
        p = torch.sigmoid(coarse)
        # information blocking: 1 - max(p, 1 - p) is ~0 where the coarse map is sure, so the
        # high-resolution skip only adds detail where the coarse prediction hesitates
        gate = 1.0 - torch.maximum(p, 1.0 - p)
        y = self.skip(x2) * gate + coarse  # [B, 1, H/4, W/4]
        y = self.dec_bn(upsample(y, 2))  # [B, 1, H/2, W/2]
        logits = self.head(upsample(y, 2))  # [B, 1, H, W]
        return {"logits": logits, "aux_logits": aux}


@register_model
def sinet(**kwargs) -> SINet:
    return SINet(**kwargs)
