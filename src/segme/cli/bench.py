"""``segme bench``: model-only and whole-pipeline latency of a model on this machine."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import typer


def bench(
    model: Path = typer.Option(None, help="Model file (.onnx); default: the built-in model."),
    width: int = typer.Option(1280, min=16, help="Frame width for the pipeline timing."),
    height: int = typer.Option(720, min=16, help="Frame height for the pipeline timing."),
    threads: list[int] = typer.Option([1, 2], help="Thread counts to time (repeat the option)."),
    runs: int = typer.Option(100, min=5, help="Timed calls per measurement (median reported)."),
) -> None:
    """Median latency of the model call alone and of the whole photo pipeline (prepare,
    model, resize back, background blur) on a WIDTHxHEIGHT frame."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from segme import effects
    from segme.data.synthetic import synthetic_pair
    from segme.evaluate.speed import time_calls
    from segme.segmenter import Segmenter

    frame, _ = synthetic_pair(np.random.default_rng(0), height, width)
    table = Table(title=f"segme bench ({width}x{height} frame, median of {runs} runs)")
    for col in ("model", "input", "threads", "model ms", "pipeline ms", "pipeline fps"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for t in threads:
        seg = Segmenter(model, threads=t)
        model_ms = statistics.median(time_calls(seg.backend, runs, warmup=10))
        pipe = []
        for _ in range(max(5, runs // 4)):
            t0 = time.perf_counter()
            effects.blur_background(frame, seg(frame))
            pipe.append((time.perf_counter() - t0) * 1000)
        pipe_ms = statistics.median(pipe)
        h, w = seg.card.input_size
        table.add_row(seg.card.arch, f"{w}x{h}", str(t), f"{model_ms:.2f}", f"{pipe_ms:.1f}",
                      f"{1000 / pipe_ms:.1f}")
    Console().print(table)
