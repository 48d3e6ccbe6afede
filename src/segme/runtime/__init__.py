"""Inference backends, one file each, chosen by the model file's suffix."""

from __future__ import annotations

from pathlib import Path

from segme.cards import ModelCard

SUFFIXES = {".onnx": "onnx", ".tflite": "litert", ".pt": "torch", ".safetensors": "torch"}
WEIGHTS = Path(__file__).resolve().parent.parent / "weights"  # the models shipped in the package
# the built-in files a torch network is rebuilt from (fine-tuning, re-export), best first
NETWORK_FILES = (".safetensors", ".onnx")


def resolve_model(path: str | Path, prefer: tuple[str, ...] = (".onnx",)) -> Path:
    """A model file path, or the name of a built-in model (``segme models list``), such as
    ``mnv3-unet-portraits-192``, -> the file to open.

    Args:
        path: a file path, returned as is, or a built-in model's name.
        prefer: the suffixes of the built-in files that can serve, best first: ``.onnx``
            to run a model, ``.safetensors`` before ``.onnx`` to rebuild its network.
    """
    path = Path(path)
    if not path.suffix and not path.exists() and path.name == str(path):
        for suffix in prefer:
            builtin = WEIGHTS / f"{path.name}{suffix}"
            if builtin.is_file():
                return builtin
        names = ", ".join(sorted({p.stem for p in WEIGHTS.iterdir() if p.suffix in prefer}))
        raise FileNotFoundError(f"no model file or built-in model named {path.name!r}; "
                                f"built-in: {names}")
    return path


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
