"""``segme eval-video``: the temporal benchmark (flicker and temporal error per method)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from segme.cli import _options as opt


def eval_video(
    model: Path = typer.Option(None, help="Model file (.onnx, or .pt with PyTorch); default: "
                               "the built-in model."),
    data: Path = typer.Option(None, help="Folder with images and masks: each pair becomes a "
                              "synthetic camera-motion clip with exact masks."),
    videos: list[Path] = typer.Option([], "--videos", help="A real video without masks "
                                      "(instability only); repeat for more."),
    temporal: str = typer.Option(None, help="Comma list of methods to compare, e.g. "
                                 "none,ema,ofd,prior or ofd+ema, and bgsub (the seed's "
                                 "background subtraction, no model; docs/video.md); default: "
                                 "every method the model supports."),
    clips: int = typer.Option(24, help="Motion clips: N pairs spread over --data."),
    frames: int = typer.Option(48, help="Frames per motion clip."),
    max_frames: int = typer.Option(None, help="Read at most this many frames of each video."),
    threads: int = typer.Option(None, help="Inference threads."),
    markdown: bool = typer.Option(False, help="Print a Markdown table."),
    json_out: Path = typer.Option(None, "--json", help="Also write the results as JSON."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    upsample: str = opt.EVAL_UPSAMPLE,
) -> None:
    """Foreground IoU, dtSSD and instability (alpha flicker where the image is still) of each
    temporal method, on synthetic motion clips made from --data and on real --videos, with
    the frames per second of the model plus the method."""
    from segme.evaluate.video import evaluate_video, format_video_table
    from segme.io.files import write_text_atomic

    results = evaluate_video(model, data, videos, temporal, clips=clips, frames=frames,
                             max_frames=max_frames, threads=threads, progress=progress,
                             upsample=upsample)
    print(format_video_table(results, markdown=markdown))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(json_out, json.dumps(results, indent=2) + "\n")
