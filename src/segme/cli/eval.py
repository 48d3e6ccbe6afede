"""``segme eval``: score a checkpoint or an exported model on images with masks."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import typer


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def evaluate(
    model: Path = typer.Option(..., help="Checkpoint (.pt) or exported model (.onnx)."),
    data: Path = typer.Option(..., help="Folder with images and masks (any supported layout)."),
    json_out: Path = typer.Option(None, "--json", help="Also write the results as JSON."),
    markdown: bool = typer.Option(False, help="Print a Markdown table."),
    threads: int = typer.Option(None, help="Inference threads."),
    limit: int = typer.Option(None, help="Score only the first N pairs."),
) -> None:
    """Foreground IoU, mIoU, boundary IoU, MAD, MSE, SAD, gradient and connectivity errors,
    overall and per source (file-name prefix before the first '_')."""
    from segme.evaluate.metrics import format_table
    from segme.evaluate.run import evaluate as run

    if not data.is_dir():
        raise FileNotFoundError(f"--data folder not found: {data}")
    results = run(model, data, threads=threads, limit=limit)
    print(format_table(results, markdown=markdown))
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(results, indent=2) + "\n")
