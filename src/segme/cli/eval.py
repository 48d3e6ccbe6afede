"""``segme eval``: score a checkpoint or an exported model on images with masks."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from segme.cli import _options as opt


def evaluate(
    model: Path = typer.Option(..., help="Model: a built-in name, a checkpoint (.pt/.safetensors) or an exported file (.onnx/.tflite)."),
    data: Path = typer.Option(..., help="Folder with images and masks (any supported layout)."),
    json_out: Path = typer.Option(None, "--json", help="Also write the results as JSON."),
    markdown: bool = typer.Option(False, help="Print a Markdown table."),
    threads: int = typer.Option(None, help="Inference threads."),
    limit: int = typer.Option(
        None, help="Score only N pairs, taken in turn from each source (file-name prefix), "
        "each source's in name order: equal shares keep the per-source rows comparable."),
    tta: str = opt.TTA,
    upsample: str = opt.EVAL_UPSAMPLE,
    per_image: Path = typer.Option(
        None, "--per-image",
        help="Also write one CSV row per image (worst fg-IoU first) and print the worst five."),
) -> None:
    """Foreground IoU, mIoU, boundary IoU, MAD, MSE, SAD, gradient and connectivity errors,
    overall and per source (file-name prefix before the first '_')."""
    from segme.evaluate.metrics import format_table
    from segme.evaluate.run import evaluate as run
    from segme.io.files import write_csv_atomic, write_text_atomic

    if not data.is_dir():
        raise FileNotFoundError(f"--data folder not found: {data}")
    if per_image is not None and per_image.suffix.lower() != ".csv":
        raise ValueError(f"--per-image {per_image}: give a .csv file name")
    images: list[dict] | None = [] if per_image is not None else None
    results = run(model, data, threads=threads, limit=limit, tta=tta, per_image=images,
                  upsample=upsample)
    print(format_table(results, markdown=markdown))
    if images:
        images.sort(key=lambda r: r["fg_iou"])
        per_image.parent.mkdir(parents=True, exist_ok=True)
        write_csv_atomic(per_image, images)
        print("worst fg-IoU: " + ", ".join(f"{r['name']} {r['fg_iou']:.2f}" for r in images[:5]))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(json_out, json.dumps(results, indent=2) + "\n")

