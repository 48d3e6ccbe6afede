"""What every encoder offers the decoders: its feature pyramid's channels and strides."""

from __future__ import annotations

import torch
import torch.nn as nn


class Encoder(nn.Module):
    """A backbone returning a list of feature maps, finest first.

    Subclasses set, in ``__init__``:

    Attributes:
        in_channels: planes of the input (3 RGB, 4 with a previous-frame alpha).
        out_channels: channels of each returned map.
        strides: total stride of each returned map (its side is the input's / stride).

    ``forward(x)`` maps ``x [B, in_channels, H, W]`` to
    ``[B, out_channels[i], H / strides[i], W / strides[i]]`` for each ``i``. The class adds no
    parameters, so an encoder's state-dict keys are those of its own layers.
    """

    in_channels: int
    out_channels: tuple[int, ...]
    strides: tuple[int, ...]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def load_pretrained(self) -> str:
        """Load the encoder's ImageNet weights in place; returns what was loaded.

        Raises:
            ValueError: this encoder has no weights to load.
        """
        raise ValueError(f"{type(self).__name__} has no ImageNet weights; the "
                         f"EfficientNet-Lite encoders have")
