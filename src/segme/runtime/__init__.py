"""Inference backends, one file each, chosen by the model file's suffix or by name."""

from __future__ import annotations

from pathlib import Path

from segme.cards import ModelCard
from segme.weights import WEIGHTS, resolve_model

SUFFIXES = {".onnx": "onnx", ".tflite": "litert", ".xml": "openvino", ".pt": "torch",
            ".safetensors": "torch"}
# runtime name -> the suffixes it opens (``--runtime``); the first suffix's own is default
RUNTIMES = {"onnx": (".onnx",), "litert": (".tflite",), "openvino": (".xml", ".onnx"),
            "torch": (".pt", ".safetensors")}


def builtin_card(name: str) -> ModelCard | None:
    """The card of the built-in model ``name``, read from its ONNX file (no torch), or None
    when no built-in model has that name."""
    path = WEIGHTS / f"{name}.onnx"
    if Path(name).name != name or not path.is_file():
        return None
    from segme.runtime.onnx import OnnxBackend

    return OnnxBackend(path).card


def load_backend(path: str | Path, threads: int | None = None, runtime: str | None = None):
    """Open a model file with the backend its suffix names, or the one ``runtime`` names.

    Args:
        path: model file, or the name of a built-in model (``resolve_model``).
        threads: inference threads (None: the runtime's default, all cores).
        runtime: ``onnx``, ``litert``, ``openvino`` or ``torch``; None: by suffix. OpenVINO
            also opens ``.onnx`` files.

    Returns an object with ``card`` (ModelCard) and ``run(x [N, C, h, w]) -> alpha``.
    """
    path = resolve_model(path)
    suffix = path.suffix.lower()
    if runtime is not None and runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")
    kind = runtime or SUFFIXES.get(suffix)
    if kind is None:
        known = ", ".join(SUFFIXES)
        raise ValueError(f"unknown model file type {path.suffix!r} for {path}; expected {known}")
    if suffix not in RUNTIMES[kind]:
        raise ValueError(f"the {kind} runtime opens {' or '.join(RUNTIMES[kind])} files, "
                         f"not {path.name}")
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    if kind == "onnx":
        from segme.runtime.onnx import OnnxBackend

        return OnnxBackend(path, threads)
    if kind == "litert":
        from segme.runtime.litert import LiteRTBackend

        return LiteRTBackend(path, threads)
    if kind == "openvino":
        from segme.runtime.openvino import OpenVINOBackend

        return OpenVINOBackend(path, threads)
    from segme.runtime.torch import TorchBackend

    return TorchBackend(path, threads)
