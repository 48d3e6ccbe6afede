"""``segme export``: checkpoint -> ONNX with the ModelCard embedded and a parity check."""

from __future__ import annotations

from pathlib import Path

import typer


def export(
    model: Path = typer.Option(..., help="Checkpoint (.pt) written by `segme train`."),
    output: Path = typer.Option(..., "-o", "--output", help="Output .onnx file."),
    size: int = typer.Option(None, help="Square input side (default: the size it trained at)."),
    max_diff: float = typer.Option(1e-4, help="Fail if the max abs alpha difference is above."),
) -> None:
    """Export to ONNX, then check parity against PyTorch on random inputs."""
    import numpy as np

    from segme.export.onnx import export_onnx, parity
    from segme.train.checkpoint import load_model

    if output.suffix.lower() != ".onnx":
        raise ValueError(f"output must end in .onnx, got {output.name}")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"output folder not found: {output.parent}")
    net, card = load_model(model)
    if size:
        card = net.card(size)
    export_onnx(net, output, card)
    h, w = card.input_size
    x = np.random.default_rng(0).standard_normal((2, card.in_channels, h, w)).astype(np.float32)
    diff = parity(net, output, x)
    print(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB); "
          f"max abs alpha difference vs torch: {diff:.2e}")
    if diff > max_diff:
        output.unlink()
        raise ValueError(f"parity check failed: {diff:.2e} > {max_diff:.0e}; file removed")
