"""The built-in models shipped in this folder, and how a name resolves to one of their files.

``mnv3-unet-portraits-224`` (the default) and ``mnv3-unet-portraits-192`` (lite): their model
cards are in README.md here. Every layer that takes a model path (inference backends, model
loading for fine-tuning and export, the server) also takes these names.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS = Path(__file__).resolve().parent
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
