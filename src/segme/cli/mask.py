"""``segme mask``: the person's alpha as an 8-bit PNG per image."""

from __future__ import annotations

from pathlib import Path

from segme.cli import _options as opt


def mask(sources: list[str] = opt.SOURCES, out: str = opt.OUT,
         recursive: bool = opt.RECURSIVE, model: Path = opt.VERB_MODEL, threads: int = opt.THREADS,
         runtime: str = opt.RUNTIME,
         jobs: int = opt.JOBS, duration: float = opt.DURATION, temporal: str = opt.TEMPORAL,
         upsample: str = opt.UPSAMPLE, tta: str = opt.TTA,
         virtual_camera: bool = opt.VIRTUAL_CAMERA) -> None:
    """Save the person mask of each image: <out>/<stem>.png, 8-bit alpha at the input size."""
    from segme.cli._apply import apply, png
    from segme.cli._live import Look

    look = Look("mask")
    apply(sources, out, model, opt.threads_for(threads, jobs), jobs, look.render, png,
          recursive=recursive, duration=duration, temporal=temporal, tta=tta,
          upsample=upsample, virtual_camera=virtual_camera, look=look, runtime=runtime)
