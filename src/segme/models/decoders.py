"""Decoders shared by more than one family: they take an encoder's ``out_channels``.

A decoder unique to one family (Mobile-UNet's concatenating one, DeepLabV3+'s, PortraitNet's,
MODNet's branches) stays in that family's file.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from segme.models.blocks import DepthwiseResidual, SeparableResidual, upsample_like
from segme.models.heads import SegmentationHead

# the decoder's last block at stride 2: name -> builder(channels, act, project)
_REFINE = {
    "block": lambda ch, act, project: SeparableResidual(ch, ch, act=act, project=project),
    "sep": lambda ch, act, project: DepthwiseResidual(ch, act, pointwise=True),
    "dw": lambda ch, act, project: DepthwiseResidual(ch, act, pointwise=False),
    "none": lambda ch, act, project: nn.Identity(),
}


class AdditiveDecoder(nn.Module):
    """U-Net decoder whose skips are added, not concatenated (Prisma-Net, MobileNetV3 U-Net,
    EfficientNet-Lite U-Net), ending in its segmentation head.

    Stage i maps level i+1 features to the width of skip i with a ``SeparableResidual``, is
    upsampled to the skip's size and added to it; a last block refines the stride-2 level
    (unless ``refine=False``) and a 1x1 ``SegmentationHead`` gives logits, resized to the
    input. The head lives inside the decoder because checkpoints name it ``decoder.head``.

    Args:
        encoder_channels: widths of the encoder levels, finest (stride 2) first: an
            encoder's ``out_channels``.
        act: activation of the blocks.
        project: 1x1-conv shortcut branch in every block (MobileNetV3 U-Net's transition
            blocks) rather than identity shortcuts where shapes allow.
        refine: the last block at stride 2: "block" (or True) a ``SeparableResidual``
            like the stages; "sep" or "dw" a ``DepthwiseResidual`` with or without its
            1x1 conv; "none" (or False) no block. The full block has few MACs but five
            passes over the largest feature map, which CPUs pay for in memory traffic:
            without it the MobileNetV3 U-Net's call is about a fifth faster
            (`docs/lab/models-history.md`).
    """

    def __init__(self, encoder_channels: Sequence[int], act: str = "relu", project: bool = False,
                 refine: bool | str = True) -> None:
        super().__init__()
        kind = {True: "block", False: "none"}.get(refine, refine)  # type: ignore[call-overload]
        if kind not in _REFINE:
            raise ValueError(f"refine must be True, False or one of {', '.join(_REFINE)}; "
                             f"got {refine!r}")
        ch = list(encoder_channels)
        self.stages = nn.ModuleList(
            SeparableResidual(ch[i + 1], ch[i], act=act, project=project) for i in range(len(ch) - 1)
        )
        self.refine: nn.Module = _REFINE[kind](ch[0], act, project)
        self.head = SegmentationHead(ch[0], kernel_size=1)

    def forward(self, feats: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """feats: encoder levels finest first ([B, encoder_channels[i], h_i, w_i]); x: the
        input (for its size) -> logits [B, 1, H, W]."""
        y = feats[-1]
        for i in reversed(range(len(self.stages))):
            skip = feats[i]
            y = upsample_like(self.stages[i](y), skip) + skip  # [B, ch[i], h_i, w_i]
        return upsample_like(self.head(self.refine(y)), x)  # [B, 1, H, W]
