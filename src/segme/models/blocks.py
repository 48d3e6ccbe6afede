"""Building blocks shared by more than one architecture family."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` (friendly to XNNPACK / ORT kernels)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # never round down by more than 10%
        new_v += divisor
    return new_v


def activation(name: str, channels: int | None = None) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "relu6":
        return nn.ReLU6(inplace=True)
    if name == "hswish":
        return nn.Hardswish(inplace=True)
    if name == "prelu":
        return nn.PReLU(channels or 1)
    if name in ("none", "linear"):
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}")


class ConvBNAct(nn.Sequential):
    """Conv2d -> BatchNorm2d -> activation. ``groups=in_ch`` makes it depthwise."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int = 3,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        act: str = "relu6",
    ) -> None:
        padding = dilation * (kernel - 1) // 2
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride, padding, dilation, groups, bias=False),
            nn.BatchNorm2d(out_ch),
            activation(act, out_ch),
        )


class SeparableConv(nn.Sequential):
    """Depthwise kxk conv + BN + act, then pointwise 1x1 conv + BN + act."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, dilation: int = 1,
        act: str = "relu",
    ) -> None:
        super().__init__(
            ConvBNAct(in_ch, in_ch, kernel, stride, dilation, groups=in_ch, act=act),
            ConvBNAct(in_ch, out_ch, 1, act=act),
        )


class SqueezeExcite(nn.Module):
    """Channel attention: global pool -> bottleneck MLP -> sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 4, gate: str = "sigmoid") -> None:
        super().__init__()
        hidden = make_divisible(channels / reduction, 8)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Hardsigmoid() if gate == "hsigmoid" else nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)  # [B, C, 1, 1]
        s = self.fc2(F.relu(self.fc1(s)))
        return x * self.gate(s)


class SeparableResidual(nn.Module):
    """Two depthwise-separable convs plus a shortcut, summed, then the activation.

    The second pointwise conv is linear so the sum is not clipped before the activation.
    The shortcut is the identity where shapes allow it, otherwise a strided 1x1 conv + BN;
    ``project=True`` forces the 1x1 conv (the MobileNetV3 U-Net's "transition block").

    Args:
        in_ch: input channels.
        out_ch: output channels.
        stride: 1, or 2 to halve the spatial size (in the first depthwise conv).
        act: activation name (see ``segme.models.blocks.activation``).
        project: always use a 1x1 conv shortcut, even when shapes match.
    Shapes:
        [B, in_ch, H, W] -> [B, out_ch, ceil(H / stride), ceil(W / stride)]
    """

    def __init__(
        self, in_ch: int, out_ch: int, stride: int = 1, act: str = "relu", project: bool = False
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(
            SeparableConv(in_ch, out_ch, stride=stride, act=act),
            ConvBNAct(out_ch, out_ch, 3, groups=out_ch, act=act),
            ConvBNAct(out_ch, out_ch, 1, act="none"),
        )
        if project or stride != 1 or in_ch != out_ch:
            self.shortcut: nn.Module = ConvBNAct(in_ch, out_ch, 1, stride, act="none")
        else:
            self.shortcut = nn.Identity()
        self.act = activation(act, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class DepthwiseResidual(nn.Module):
    """A light residual block: depthwise kxk + BN (+ act, pointwise 1x1 + BN), plus the
    identity, then the activation.

    Two or three passes over its map where ``SeparableResidual`` makes five to seven: the
    cheap stand-in for the MobileNetV3 U-Net's last decoder block at stride 2, where the
    map is largest and a CPU pays for memory traffic more than for MACs.

    Args:
        channels: input and output channels.
        act: activation name.
        pointwise: add the 1x1 conv (a separable conv) after the depthwise one.
    Shapes:
        [B, C, H, W] -> [B, C, H, W]
    """

    def __init__(self, channels: int, act: str = "relu", pointwise: bool = True) -> None:
        super().__init__()
        # names unlike SeparableResidual's, so --init from a model with the full block
        # leaves that block out instead of mixing its tensors into this one
        self.dw = ConvBNAct(channels, channels, 3, groups=channels,
                            act=act if pointwise else "none")
        self.pw: nn.Module = (ConvBNAct(channels, channels, 1, act="none") if pointwise
                              else nn.Identity())
        self.act = activation(act, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.pw(self.dw(x)))


class InvertedResidual(nn.Module):
    """MobileNetV2/V3 block: 1x1 expand -> depthwise kxk -> (SE) -> linear 1x1 project."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        stride: int = 1,
        expand: float = 6,
        kernel: int = 3,
        dilation: int = 1,
        act: str = "relu6",
        se: bool = False,
        hidden: int | None = None,
    ) -> None:
        super().__init__()
        hidden = hidden or make_divisible(in_ch * expand, 8)
        self.use_res = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if hidden != in_ch:
            layers.append(ConvBNAct(in_ch, hidden, 1, act=act))
        layers.append(ConvBNAct(hidden, hidden, kernel, stride, dilation, groups=hidden, act=act))
        if se:
            layers.append(SqueezeExcite(hidden, gate="hsigmoid"))
        layers.append(ConvBNAct(hidden, out_ch, 1, act="none"))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_res else y


def upsample_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of ``x`` to the spatial size of ``ref``."""
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


def upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
