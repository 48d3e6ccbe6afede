"""``segme mask``: the person's alpha as an 8-bit PNG per image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segme.cli import _options as opt


def mask(source: str = opt.SOURCE, out: Path = opt.OUT, model: Path = opt.MODEL,
         threads: int = opt.THREADS, jobs: int = opt.JOBS, duration: float = opt.DURATION) -> None:
    """Save the person mask of each image: <out>/<stem>.png, 8-bit alpha at the input size."""
    from segme.cli._apply import apply

    def render(image, alpha, path):
        return np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8), ".png"

    apply(source, out, model, opt.threads_for(threads, jobs), jobs, render, duration)
