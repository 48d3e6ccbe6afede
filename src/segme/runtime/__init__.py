"""Inference backends, one file each, chosen by the model file's suffix."""

from __future__ import annotations

from pathlib import Path

from segme.cards import ModelCard
from segme.weights import WEIGHTS, resolve_model

SUFFIXES = {".onnx": "onnx", ".tflite": "litert", ".pt": "torch", ".safetensors": "torch"}


def builtin_card(name: str) -> ModelCard | None:
    """The card of the built-in model ``name``, read from its ONNX file (no torch), or None
    when no built-in model has that name."""
    path = WEIGHTS / f"{name}.onnx"
    if Path(name).name != name or not path.is_file():
        return None
    from segme.runtime.onnx import OnnxBackend

    return OnnxBackend(path).card


def load_backend(path: str | Path, threads: int | None = None):
    """Open a model file with the backend its suffix names.

    Args:
        path: model file, or the name of a built-in model (``resolve_model``).

    Returns an object with ``card`` (ModelCard) and ``run(x [N, C, h, w]) -> alpha``.
    """
    path = resolve_model(path)
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
