"""Inference backends, one file each, chosen by the model file's suffix."""

from __future__ import annotations

from pathlib import Path

SUFFIXES = {".onnx": "onnx", ".tflite": "litert", ".pt": "torch", ".safetensors": "torch"}
WEIGHTS = Path(__file__).resolve().parent.parent / "weights"  # the models shipped in the package


def resolve_model(path: str | Path) -> Path:
    """A model file path, or the name of a built-in model (``segme models list``), such as
    ``mnv3-unet-portraits-192``, -> the file to open."""
    path = Path(path)
    if not path.suffix and not path.exists() and path.name == str(path):
        builtin = WEIGHTS / f"{path.name}.onnx"
        if builtin.is_file():
            return builtin
        names = ", ".join(sorted(p.stem for p in WEIGHTS.glob("*.onnx")))
        raise FileNotFoundError(f"no model file or built-in model named {path.name!r}; "
                                f"built-in: {names}")
    return path


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
