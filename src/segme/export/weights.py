"""Plain weights (safetensors) with the ModelCard in the file's metadata.

Small, safe to load (no pickle), and enough to rebuild the network for fine-tuning or
re-export: ``segme.models.loading.load_model`` reads them.
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
