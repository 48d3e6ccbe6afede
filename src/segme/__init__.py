"""segme: person segmentation for photos, videos and live camera feeds.

The public API is loaded lazily so that ``import segme`` stays fast and never imports torch.
"""

from __future__ import annotations

from segme._version import __version__

__all__ = ["ModelCard", "Segmenter", "create_model", "list_models", "__version__"]


def __getattr__(name: str):
    if name == "ModelCard":
        from segme.cards import ModelCard

        return ModelCard
    if name == "Segmenter":
        from segme.segmenter import Segmenter

        return Segmenter
    if name in ("create_model", "list_models"):
        from segme import models

        return getattr(models, name)
    raise AttributeError(f"module 'segme' has no attribute {name!r}")
