"""MMNet: multi-branch dilated encoder-decoder for real-time portrait matting (Seo & Park 2019).

Every encoder block expands with a 1x1 conv, runs one branch per dilation rate (a depthwise
3x3, strided where the block downsamples, then a dilated depthwise 3x3), concatenates the
branches and projects them with a linear 1x1 conv (a linear bottleneck: no activation). The
dilations give a large receptive field at depthwise cost. An auxiliary head on the deepest
features is trained with cross-entropy; the main output is trained as an alpha matte.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from segme.models.base import SegModel
from segme.models.blocks import ConvBNAct, SeparableConv, make_divisible, upsample
from segme.models.registry import register_model


class MultiBranchBlock(nn.Module):
    """1x1 expand -> per rate [depthwise 3x3 (stride) -> dilated depthwise 3x3] -> concat
    -> linear 1x1 project; residual when shapes allow.

    Input [B, in_ch, H, W] -> [B, out_ch, H / stride, W / stride].
    """

    def __init__(
        self, in_ch: int, out_ch: int, rates: tuple[int, ...], stride: int = 1, expand: int = 2
    ) -> None:
        super().__init__()
        hidden = make_divisible(in_ch * expand / len(rates), 8)
        self.expand = ConvBNAct(in_ch, hidden, 1)
        self.branches = nn.ModuleList(
            nn.Sequential(
                ConvBNAct(hidden, hidden, 3, stride, groups=hidden),
                ConvBNAct(hidden, hidden, 3, 1, dilation=r, groups=hidden),
            )
            for r in rates
        )
        self.project = ConvBNAct(hidden * len(rates), out_ch, 1, act="none")
        self.use_res = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.expand(x)
        y = self.project(torch.cat([b(h) for b in self.branches], 1))
        return x + y if self.use_res else y


class MMNet(SegModel):
    """MMNet with a depth (width) multiplier.

    Args:
        in_channels: 3 (RGB) or 4 (RGB + previous-frame alpha).
        width: channel multiplier for every layer (1.0 = the paper's base model).

    Input float32 [B, C, H, W], H and W multiples of 16; logits [B, 1, H, W];
    aux_logits [B, 1, H/16, W/16].
    """

    default_size = 256
    size_divisor = 16
    loss_recipe = "matting"

    # (out channels, stride, dilation rates, repeats) per encoder stage
    STAGES = (
        (16, 2, (1, 2, 4, 8), 2),  # stride 4
        (32, 2, (1, 2, 4, 8), 2),  # stride 8
        (64, 2, (1, 2, 4), 3),  # stride 16
        (96, 1, (1, 2), 2),  # stride 16, wider context
    )

    def __init__(self, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        self.in_channels = in_channels
        c = lambda n: make_divisible(n * width, 8)  # noqa: E731
        self.stem = ConvBNAct(in_channels, c(32), 3, 2)  # stride 2
        stages, ch = [], c(32)
        for out, stride, rates, n in self.STAGES:
            blocks = []
            for j in range(n):
                blocks.append(MultiBranchBlock(ch, c(out), rates, stride if j == 0 else 1))
                ch = c(out)
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        # decoder: compress deep features, x2 with a projected stride-8 skip, x2 with a
        # projected stride-4 skip, then a final bilinear x4 of the logits
        self.compress = ConvBNAct(ch, c(64), 1)
        self.skip8 = SeparableConv(c(32), c(32), act="relu6")
        self.dec8 = nn.Sequential(
            MultiBranchBlock(c(64) + c(32), c(48), (1, 2)), MultiBranchBlock(c(48), c(48), (1, 2))
        )
        self.skip4 = SeparableConv(c(16), c(16), act="relu6")
        self.dec4 = nn.Sequential(
            MultiBranchBlock(c(48) + c(16), c(32), (1, 2)), MultiBranchBlock(c(32), c(32), (1, 2))
        )
        self.head = nn.Conv2d(c(32), 1, 3, padding=1)
        self.aux_head = nn.Conv2d(ch, 1, 1)

    def outputs(self, x: torch.Tensor, aux: bool = True) -> dict[str, torch.Tensor]:
        x = self.stem(x)  # [B, 32w, H/2, W/2]
        f4 = self.stages[0](x)  # [B, 16w, H/4, W/4]
        f8 = self.stages[1](f4)  # [B, 32w, H/8, W/8]
        deep = self.stages[3](self.stages[2](f8))  # [B, 96w, H/16, W/16]
        y = upsample(self.compress(deep), 2)
        y = self.dec8(torch.cat([y, self.skip8(f8)], 1))  # [B, 48w, H/8, W/8]
        y = upsample(y, 2)
        y = self.dec4(torch.cat([y, self.skip4(f4)], 1))  # [B, 32w, H/4, W/4]
        out = {"logits": upsample(self.head(y), 4)}  # [B, 1, H, W]
        if aux:
            out["aux_logits"] = self.aux_head(deep)  # [B, 1, H/16, W/16]
        return out


@register_model
def mmnet(**kwargs) -> MMNet:
    return MMNet(**kwargs)
