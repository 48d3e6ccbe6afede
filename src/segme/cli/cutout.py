"""``segme cutout``: the person on a transparent background (RGBA PNG)."""

from __future__ import annotations

from pathlib import Path

import typer

from segme.cli import _options as opt


def cutout(sources: list[str] = opt.SOURCES, out: str = opt.OUT,
           recursive: bool = opt.RECURSIVE, model: Path = opt.VERB_MODEL, threads: int = opt.THREADS,
           jobs: int = opt.JOBS, duration: float = opt.DURATION, temporal: str = opt.TEMPORAL,
           upsample: str = opt.UPSAMPLE, refine: bool = opt.REFINE,
           edge: float = typer.Option(0.0, help="Smooth-step edge tightening, 0 (off) to 0.45.")) -> None:
    """Cut the person out: <out>/<stem>.png, RGBA with the alpha as transparency."""
    from segme import effects
    from segme.cli._apply import apply, png

    def render(image, alpha, path):
        if refine:
            alpha = effects.refine(alpha, image)
        if edge:
            alpha = effects.smoothstep(alpha, edge, 1 - edge)
        return effects.cutout(image, alpha)

    apply(sources, out, model, opt.threads_for(threads, jobs), jobs, render, png,
          transparent=True, recursive=recursive, duration=duration, temporal=temporal,
          upsample=upsample)
