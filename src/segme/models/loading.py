"""Rebuilding a network from a file: training checkpoints, safetensors weights and float ONNX
exports (all carry their model card), and starting a new model from another's weights.

What reads model files for torch lives here, below everything that uses it (the torch
runtime, training, export, the CLI); the writers stay with their jobs
(``segme.train.checkpoint.save_atomic``, ``segme.export.weights.save_weights``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from segme.cards import CARD_KEY, ModelCard
from segme.models.registry import create_model
from segme.weights import NETWORK_FILES, resolve_model

FORMAT = "segme-checkpoint/1"  # the marker of a checkpoint written by `segme train`


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
        path: ``best.pt`` / ``last.pt`` written by ``segme train``, a ``.safetensors``
            or float ``.onnx`` file written by ``segme export``, or the name of a built-in
            model (its ``.safetensors`` weights where it ships them, else its ``.onnx``).
        ema: use the exponential-moving-average weights when the checkpoint has them.
    """
    path = resolve_model(path, NETWORK_FILES)
    suffix = path.suffix.lower()
    if suffix in (".safetensors", ".onnx"):
        if not path.is_file():
            raise FileNotFoundError(f"weights file not found: {path}")
        state, card = (read_weights if suffix == ".safetensors" else read_onnx_weights)(path)
    else:
        ckpt = read_checkpoint(path)
        card = ModelCard.from_json(ckpt["card"])
        state = ckpt["ema"] if ema and ckpt.get("ema") is not None else ckpt["model"]
    model = create_model(card.arch, **card.arch_kwargs)
    model.load_state_dict(state)
    return model.eval(), card


def init_from(model: torch.nn.Module, path: str | Path) -> str:
    """Start ``model`` from the weights of another run (fine-tuning; adding a prior plane;
    dropping a block; widening).

    Every tensor of the source must find its place: same name and shape, copied. A tensor
    the new model has larger (more input planes, or a wider network: ``width=2`` from a
    ``width=1`` run) gets the source in its leading channels; the weights from new input
    channels into old output channels are zero and the new output channels keep their
    random initialisation. The old channels then compute exactly what they did, so the
    model starts out as the source (a 4-channel model given a previous-frame alpha plane
    ignores it; a widened network gives the narrow one's output), while the gradients
    through the zero weights are not zero and the random new channels differ from each
    other, so training puts the extra capacity to use. This needs a layout where channels
    of one stage only meet channels of the same index (additive skips, no concatenation);
    the equality is tested for the architectures it is used with. Tensors of a block the
    new model no longer has at all (``mnv3_unet`` with ``refine=False``) are left out, when
    they are a small part of the source. Tensors only the new model has keep their
    initialisation.

    Returns:
        A one-line summary of what was copied.

    Raises:
        ValueError: when some source tensor has no place (another architecture or width).
    """
    source, _ = load_model(path)
    old = source.state_dict()
    new = model.state_dict()
    placed: set[str] = set()
    widened = 0
    with torch.no_grad():
        for name, t in new.items():
            o = old.get(name)
            if o is None:
                continue
            if o.shape == t.shape:
                t.copy_(o)
                placed.add(name)
            elif o.ndim == t.ndim and all(a <= b for a, b in zip(o.shape, t.shape)) and (
                    o.shape[2:] == t.shape[2:]):
                if o.ndim >= 2:  # [out, in, ...]: old outputs see nothing of the new inputs
                    t[: o.shape[0], o.shape[1]:] = 0
                t[tuple(slice(0, n) for n in o.shape)] = o
                placed.add(name)
                widened += 1
    weights = [k for k in old if not k.endswith("num_batches_tracked")]
    unplaced = [k for k in weights if k not in placed]
    # every module path of the new model; a source tensor outside all of them belongs to a
    # block the new model dropped, any other unplaced one is a mismatch
    modules = {m for k in new for m in _modules_of(k)}
    removed = [k for k in unplaced if k.rpartition(".")[0] not in modules]
    if len(removed) < len(unplaced) or len(removed) > len(weights) // 10:
        # a half-loaded network is a silent mistake
        raise ValueError(f"--init {path}: {len(unplaced)} of its {len(weights)} "
                         f"tensors have no match in {type(model).__name__}; start from a run "
                         "of the same architecture and the same or a smaller width")
    blocks = sorted({next(m for m in _modules_of(k) if m not in modules) for k in removed})
    return (f"initialised from {path}: {len(placed) - widened} of {len(new)} tensors copied"
            + (f", {widened} embedded in larger tensors (zero weights from new input channels"
               " into old ones)" if widened else "")
            + (f", {len(removed)} of blocks the new model drops ({', '.join(blocks)}) left out"
               if removed else ""))


def _modules_of(name: str) -> list[str]:
    """``"decoder.refine.body.0.weight"`` -> ``["decoder", "decoder.refine", ...,
    "decoder.refine.body.0"]``: the modules a tensor lies in, outermost first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


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
    the statistics are learnt again). Weights stored as float16 or int8 (`--quantize fp16-weights`,
    `int8-weights`) come back as float32; quantised files are refused.
    """
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
    for node in graph.graph.node:  # weights stored small (stored_weights): restored by name
        if node.op_type in ("Cast", "Mul") and node.input and all(i in arrays for i in node.input):
            ins = [arrays[i].astype("float32") for i in node.input]
            arrays[node.output[0]] = ins[0] if node.op_type == "Cast" else ins[0] * ins[1]

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
