"""Checkpoints: atomic writes, and loading a model (EMA weights when present) from one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from segme.cards import ModelCard
from segme.io.files import atomic_output

FORMAT = "segme-checkpoint/1"


def save_atomic(obj: dict[str, Any], path: str | Path) -> None:
    """torch.save through a temporary file, fsync'ed, then renamed over ``path``.

    A crash mid-write leaves the previous checkpoint intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint dict on the CPU, with a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file
        raise ValueError(f"{path} is not a segme checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a segme checkpoint (no {FORMAT!r} marker)")
    return ckpt


def load_model(path: str | Path, ema: bool = True) -> tuple[torch.nn.Module, ModelCard]:
    """Rebuild the network a checkpoint was trained with, in eval mode.

    Args:
        path: ``best.pt`` / ``last.pt`` written by ``segme train``, or a ``.safetensors``
            weights file written by ``segme export``.
        ema: use the exponential-moving-average weights when the checkpoint has them.
    """
    from segme.models import create_model

    if Path(path).suffix.lower() == ".safetensors":
        from segme.export.weights import read_weights

        if not Path(path).is_file():
            raise FileNotFoundError(f"weights file not found: {path}")
        state, card = read_weights(path)
    else:
        ckpt = read_checkpoint(path)
        card = ModelCard.from_json(ckpt["card"])
        state = ckpt["ema"] if ema and ckpt.get("ema") is not None else ckpt["model"]
    model = create_model(card.arch, **card.arch_kwargs)
    model.load_state_dict(state)
    return model.eval(), card
