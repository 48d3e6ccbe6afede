"""Inference backends, one file each, chosen by the model file's suffix."""

from __future__ import annotations

from pathlib import Path

SUFFIXES = {".onnx": "onnx", ".tflite": "litert", ".pt": "torch", ".safetensors": "torch"}


def load_backend(path: str | Path, threads: int | None = None):
    """Open a model file with the backend its suffix names.

    Returns an object with ``card`` (ModelCard) and ``run(x [N, C, h, w]) -> alpha``.
    """
    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        known = ", ".join(SUFFIXES)
        raise ValueError(f"unknown model file type {path.suffix!r} for {path}; expected {known}")
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    if kind == "onnx":
        from segme.runtime.onnx import OnnxBackend

        return OnnxBackend(path, threads)
    if kind == "litert":
        from segme.runtime.litert import LiteRTBackend

        return LiteRTBackend(path, threads)
    from segme.runtime.torch import TorchBackend

    return TorchBackend(path, threads)
