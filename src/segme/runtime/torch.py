"""PyTorch backend for training checkpoints (``.pt``). Needs the ``train`` extra."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class TorchBackend:
    """Runs a ``segme train`` checkpoint (EMA weights when present) or exported
    ``.safetensors`` weights with PyTorch.

    Args:
        path: ``best.pt``, ``last.pt`` or a ``.safetensors`` file.
        threads: torch intra-op threads (None = torch's default).
    """

    dynamic_size = True  # any input size that is a multiple of the card's divisor

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        try:
            import torch
        except ImportError:
            raise ImportError(
                "running a .pt checkpoint needs PyTorch: pip install 'segme[train]' "
                "(or run it exported: segme export --model CKPT -o model.onnx)"
            ) from None
        from segme.models.loading import load_model

        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.model, self.card = load_model(path)

    def run(self, x: np.ndarray) -> np.ndarray:
        """x: float32 [N, C, h, w] prepared input -> alpha float32 [N, 1, h, w] in [0, 1]."""
        with self._torch.inference_mode():
            return self.model(self._torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()
