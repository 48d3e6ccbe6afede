"""Tiny registered models for fast tests (hidden from ``list_models()`` by default)."""

from __future__ import annotations

import torch
import torch.nn as nn

from segme.models.base import SegModel
from segme.models.blocks import ConvBNAct, upsample
from segme.models.registry import register_model


class TinyNet(SegModel):
    """Four conv layers, stride 4: [B, C, H, W] -> logits [B, 1, H, W]; aux at stride 4."""

    default_size = 32
    size_divisor = 4

    def __init__(self, in_channels: int = 3, width: int = 8) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.down = nn.Sequential(
            ConvBNAct(in_channels, width, 3, 2), ConvBNAct(width, width, 3, 2)
        )
        self.mid = ConvBNAct(width, width, 3)
        self.head = nn.Conv2d(width, 1, 1)
        self.aux_head = nn.Conv2d(width, 1, 1)

    def outputs(self, x: torch.Tensor, aux: bool = True) -> dict[str, torch.Tensor]:
        f = self.down(x)
        out = {"logits": upsample(self.head(self.mid(f)), 4)}
        if aux:
            out["aux_logits"] = self.aux_head(f)
        return out


@register_model
def test_tiny(**kwargs) -> TinyNet:
    return TinyNet(**kwargs)


@register_model
def test_tiny_prior(**kwargs) -> TinyNet:
    return TinyNet(in_channels=4, **kwargs)
