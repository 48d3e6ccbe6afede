"""``segme eval``: score a checkpoint or an exported model on images with masks."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from segme.cli import _options as opt


def evaluate(
    model: Path = typer.Option(..., help="Checkpoint (.pt) or exported model (.onnx)."),
    data: Path = typer.Option(..., help="Folder with images and masks (any supported layout)."),
    json_out: Path = typer.Option(None, "--json", help="Also write the results as JSON."),
    markdown: bool = typer.Option(False, help="Print a Markdown table."),
    threads: int = typer.Option(None, help="Inference threads."),
    limit: int = typer.Option(None, help="Score only the first N pairs."),
    tta: str = opt.TTA,
) -> None:
    """Foreground IoU, mIoU, boundary IoU, MAD, MSE, SAD, gradient and connectivity errors,
    overall and per source (file-name prefix before the first '_')."""
    from segme.evaluate.metrics import format_table
    from segme.evaluate.run import evaluate as run
    from segme.io.files import write_text_atomic

    if not data.is_dir():
        raise FileNotFoundError(f"--data folder not found: {data}")
    results = run(model, data, threads=threads, limit=limit, tta=tta)
    print(format_table(results, markdown=markdown))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(json_out, json.dumps(results, indent=2) + "\n")
