"""Training checkpoints, written atomically (``segme.models.loading`` reads them back)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from segme.io.files import atomic_output


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
