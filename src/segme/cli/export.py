"""``segme export``: checkpoint -> ONNX (parity-checked) or safetensors weights, card embedded."""

from __future__ import annotations

from pathlib import Path

import typer

FORMATS = {".onnx": "ONNX model", ".safetensors": "weights"}


def export(
    model: Path = typer.Option(..., help="Checkpoint (.pt) written by `segme train`."),
    output: Path = typer.Option(..., "-o", "--output", help="Output file: .onnx or .safetensors."),
    size: int = typer.Option(None, help="Square input side (default: the size it trained at)."),
    max_diff: float = typer.Option(1e-4, help="ONNX: fail if the max abs alpha difference is above."),
) -> None:
    """Export a trained model. ONNX exports are checked against PyTorch on random inputs."""
    import numpy as np

    from segme.export.onnx import export_onnx, parity
    from segme.export.weights import save_weights
    from segme.train.checkpoint import load_model

    suffix = output.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"output must end in {' or '.join(FORMATS)}, got {output.name}")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"output folder not found: {output.parent}")
    net, card = load_model(model)
    if size:
        card = net.card(size)
    if suffix == ".safetensors":
        save_weights(net, card, output)
        print(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB)")
        return
    export_onnx(net, output, card)
    h, w = card.input_size
    x = np.random.default_rng(0).standard_normal((2, card.in_channels, h, w)).astype(np.float32)
    diff = parity(net, output, x)
    print(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB); "
          f"max abs alpha difference vs torch: {diff:.2e}")
    if diff > max_diff:
        output.unlink()
        raise ValueError(f"parity check failed: {diff:.2e} > {max_diff:.0e}; file removed")
