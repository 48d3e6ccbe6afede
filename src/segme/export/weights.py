"""Plain weights (safetensors) with the ModelCard in the file's metadata.

Small, safe to load (no pickle), and enough to rebuild the network for fine-tuning or
re-export: ``segme.train.checkpoint.load_model`` reads them.
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


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], ModelCard]:
    """State dict and card of a file written by ``save_weights``."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{path} is not a safetensors file: {e}") from None
    if CARD_KEY not in meta:
        raise ValueError(f"{path} has no segme model card; save it with `segme export`")
    return state, ModelCard.from_json(meta[CARD_KEY])


def read_onnx_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], ModelCard]:
    """State dict and card recovered from a float ONNX file written by ``segme export``.

    The exporter folds each batch norm into the convolution before it, keeping the
    convolution's name (``X.weight``, the bias as ``X.weight_bias``). The folded network is
    rebuilt exactly: the convolution takes the folded weight and the batch norm becomes the
    identity plus the folded bias (mean 0, variance ``1 - eps``, scale 1). A model shipped
    only as ONNX can so be re-exported exactly (``segme export``: TFLite, safetensors) or
    fine-tuned (``segme train --init``; in training mode each batch norm then normalises by
    the batch's statistics, so the first steps move away from the folded network before
    the statistics are learnt again). Quantised files are refused.
    """
    from segme.models import create_model

    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ValueError("reading weights from ONNX needs the onnx package: "
                         "pip install 'segme[export]'") from None
    try:
        graph = onnx.load(str(path))
    except Exception as e:  # protobuf raises its own DecodeError, among others
        raise ValueError(f"{path} is not an ONNX file ({type(e).__name__})") from None
    meta = {p.key: p.value for p in graph.metadata_props}
    if CARD_KEY not in meta:
        raise ValueError(f"{path} has no segme model card; only files from `segme export` "
                         "can be read back")
    card = ModelCard.from_json(meta[CARD_KEY])
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.graph.initializer}

    model = create_model(card.arch, **card.arch_kwargs)
    modules = list(model.named_modules())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    filled: set[str] = set()

    def take(key: str, name: str) -> None:
        value = torch.from_numpy(arrays[name].astype("float32"))
        if value.shape != state[key].shape:
            raise ValueError(f"{path}: {name} has shape {tuple(value.shape)}, the model's "
                             f"{key} {tuple(state[key].shape)}")
        state[key] = value
        filled.add(key)

    for i, (name, module) in enumerate(modules):
        if isinstance(module, torch.nn.BatchNorm2d):
            continue
        for pname, _ in module.named_parameters(recurse=False):
            key = f"{name}.{pname}"
            if key in arrays:
                take(key, key)
        if isinstance(module, torch.nn.Conv2d) and f"{name}.weight_bias" in arrays:
            bn_name, bn = modules[i + 1] if i + 1 < len(modules) else ("", None)
            if not isinstance(bn, torch.nn.BatchNorm2d):
                raise ValueError(f"{path}: no batch norm after {name} to take its folded bias")
            take(f"{bn_name}.bias", f"{name}.weight_bias")
            state[f"{bn_name}.weight"] = torch.ones_like(state[f"{bn_name}.weight"])
            state[f"{bn_name}.running_mean"] = torch.zeros_like(state[f"{bn_name}.running_mean"])
            state[f"{bn_name}.running_var"] = torch.full_like(state[f"{bn_name}.running_var"],
                                                              1.0 - bn.eps)
            filled.update(f"{bn_name}.{k}" for k in ("weight", "running_mean", "running_var"))
    missing = [k for k in state if k not in filled and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"{path} has no float weights for {missing[0]} and {len(missing) - 1} "
                         "more (a quantised export? read the float .onnx instead)")
    return state, card
