"""Plain weights (safetensors) with the ModelCard in the file's metadata.

Small, safe to load (no pickle), and enough to rebuild the network for fine-tuning or
re-export: ``segme.train.checkpoint.load_model`` reads them.
"""

from __future__ import annotations

from pathlib import Path

import torch

from segme.cards import CARD_KEY, ModelCard
from segme.io.files import atomic_output


def save_weights(model: torch.nn.Module, card: ModelCard, path: str | Path) -> Path:
    """Write ``model.state_dict()`` to ``path`` (.safetensors) atomically, card embedded."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_output(path) as tmp:
        save_file(state, str(tmp), metadata={CARD_KEY: card.to_json()})
    return path


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], ModelCard]:
    """State dict and card of a file written by ``save_weights``."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{path} is not a safetensors file: {e}") from None
    if CARD_KEY not in meta:
        raise ValueError(f"{path} has no segme model card; save it with `segme export`")
    return state, ModelCard.from_json(meta[CARD_KEY])
