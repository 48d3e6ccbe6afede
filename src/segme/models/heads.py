"""The 1-channel segmentation head the families end with.

``SegmentationHead`` is an ``nn.Conv2d`` with a typed constructor: subclassing (rather than
wrapping) keeps its state-dict keys ``<name>.weight`` and ``<name>.bias`` wherever a family
keeps it, and its ``forward`` that of a plain conv, which ``train/qat.py`` replaces on every
``nn.Conv2d``. Resizing the logits to the input is the caller's ``upsample_like``. The
sigmoid is not here: ``SegModel.forward`` applies it once, for every family.
"""

from __future__ import annotations

import torch.nn as nn


class SegmentationHead(nn.Conv2d):
    """Conv to 1-channel logits ("same" padding).

    Args:
        in_channels: channels of the decoder features.
        kernel_size: 1 (a per-pixel linear map) or 3 (looks at its neighbours).
    Shapes:
        [B, in_channels, h, w] -> logits [B, 1, h, w].
    """

    def __init__(self, in_channels: int, kernel_size: int = 1) -> None:
        super().__init__(in_channels, 1, kernel_size, padding=kernel_size // 2)
