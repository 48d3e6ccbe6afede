"""``segme bench``: model-only and whole-pipeline latency of a model on this machine."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import typer


def bench(
    model: Path = typer.Option(None, help="Model file (.onnx/.tflite/.pt) or a built-in name; default: the built-in model."),
    width: int = typer.Option(1280, min=16, help="Frame width for the pipeline timing."),
    height: int = typer.Option(720, min=16, help="Frame height for the pipeline timing."),
    threads: list[int] = typer.Option([1, 2], help="Thread counts to time (repeat the option)."),
    runs: int = typer.Option(100, min=5, help="Timed calls per measurement (median reported)."),
    upsample: list[str] = typer.Option(["guided", "bilinear"], help="Upsamplings to time in "
                                       "the pipeline (repeat the option): guided, the photos' "
                                       "default, and bilinear, the videos'."),
) -> None:
    """Median latency of the model call alone and of the whole photo pipeline (prepare,
    model, alpha back to the frame's size, background blur) on a WIDTHxHEIGHT frame."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from segme import effects
    from segme.data.synthetic import synthetic_pair
    from segme.evaluate.speed import time_calls
    from segme.segmenter import Segmenter

    frame, _ = synthetic_pair(np.random.default_rng(0), height, width)
    table = Table(title=f"segme bench ({width}x{height} frame, median of {runs} runs)")
    for col in ("model", "input", "threads", "model ms", "upsampling", "pipeline ms", "fps"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for t in threads:
        segs = [Segmenter(model, threads=t, upsample=mode) for mode in upsample]
        model_ms = statistics.median(time_calls(segs[0].backend, runs, warmup=10))
        pipe: list[list[float]] = [[] for _ in segs]
        for _ in range(max(5, runs // 4)):  # the upsamplings interleaved, call by call
            for seg, samples in zip(segs, pipe):
                t0 = time.perf_counter()
                effects.blur_background(frame, seg(frame))
                samples.append((time.perf_counter() - t0) * 1000)
        h, w = segs[0].card.input_size
        for seg, samples in zip(segs, pipe):
            pipe_ms = statistics.median(samples)
            table.add_row(seg.card.arch, f"{w}x{h}", str(t), f"{model_ms:.2f}", seg.upsample,
                          f"{pipe_ms:.1f}", f"{1000 / pipe_ms:.1f}")
    Console().print(table)
