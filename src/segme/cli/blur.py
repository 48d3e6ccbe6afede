"""``segme blur``: the background blurred, the person sharp."""

from __future__ import annotations

from pathlib import Path

import typer

from segme.cli import _options as opt


def blur(sources: list[str] = opt.SOURCES, out: str = opt.OUT,
         recursive: bool = opt.RECURSIVE, model: Path = opt.VERB_MODEL, threads: int = opt.THREADS,
         runtime: str = opt.RUNTIME,
         jobs: int = opt.JOBS, duration: float = opt.DURATION, temporal: str = opt.TEMPORAL,
         upsample: str = opt.UPSAMPLE, refine: bool = opt.REFINE,
         virtual_camera: bool = opt.VIRTUAL_CAMERA,
         strength: float = typer.Option(15.0, min=0, help="Blur radius in tenths of a percent of the short side.")) -> None:
    """Blur the background, keep the person sharp: <out>/<stem>, same format as the input."""
    from segme.cli._apply import apply, same_suffix
    from segme.cli._live import Look

    look = Look("blur", strength)
    apply(sources, out, model, opt.threads_for(threads, jobs), jobs, look.render, same_suffix,
          recursive=recursive, duration=duration, temporal=temporal,
          upsample=opt.upsample_for(upsample, refine), virtual_camera=virtual_camera, look=look,
          runtime=runtime)
