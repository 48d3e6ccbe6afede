"""``segme cutout``: the person on a transparent background (RGBA PNG)."""

from __future__ import annotations

from pathlib import Path

import typer

from segme.cli import _options as opt


def cutout(sources: list[str] = opt.SOURCES, out: str = opt.OUT,
           recursive: bool = opt.RECURSIVE, model: Path = opt.VERB_MODEL, threads: int = opt.THREADS,
         runtime: str = opt.RUNTIME,
           jobs: int = opt.JOBS, duration: float = opt.DURATION, temporal: str = opt.TEMPORAL,
           upsample: str = opt.UPSAMPLE, refine: bool = opt.REFINE,
           edge: float = typer.Option(0.0, help="Smooth-step edge tightening, 0 (off) to 0.45.")) -> None:
    """Cut the person out: <out>/<stem>.png, RGBA with the alpha as transparency."""
    from segme.cli._apply import apply, png
    from segme.cli._live import Look

    look = Look("cutout", edge=edge)
    apply(sources, out, model, opt.threads_for(threads, jobs), jobs, look.render, png,
          transparent=True, recursive=recursive, duration=duration, temporal=temporal,
          upsample=opt.upsample_for(upsample, refine), look=look, runtime=runtime)
