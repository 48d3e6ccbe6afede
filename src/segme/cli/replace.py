"""``segme replace``: a new background behind the person (a colour or a photo)."""

from __future__ import annotations

from pathlib import Path

import typer

from segme.cli import _options as opt


def replace(sources: list[str] = opt.SOURCES,
            bg: list[str] = typer.Option(..., help="Colour (name, #rrggbb, r,g,b), an image "
                                         "file, or a video file (played along, looping). A "
                                         "camera takes several (--bg a.jpg --bg b.jpg): the "
                                         "n key goes to the next."),
            out: str = opt.OUT, recursive: bool = opt.RECURSIVE, model: Path = opt.VERB_MODEL,
            threads: int = opt.THREADS,
            runtime: str = opt.RUNTIME,
            jobs: int = opt.JOBS, duration: float = opt.DURATION, temporal: str = opt.TEMPORAL,
            upsample: str = opt.UPSAMPLE, refine: bool = opt.REFINE,
            fit: str = typer.Option("fill", help="Background image: fill (crop) or fit (pad)."),
            harmonize: float = typer.Option(0.0, help="Colour transfer towards the background, 0..1."),
            virtual_camera: bool = opt.VIRTUAL_CAMERA,
            ) -> None:
    """Replace the background with a colour or a photo: <out>/<stem>, same format as the input."""
    from segme.cli._apply import apply, same_suffix
    from segme.cli._live import Background, Look
    from segme.io.camera import is_camera

    if len(bg) > 1 and not (len(sources) == 1 and is_camera(sources[0])):
        raise ValueError("several --bg are for a camera (the n key goes to the next); photos "
                         "and videos take one")
    look = Look("replace", backgrounds=[Background(b, fit) for b in bg], harmonize=harmonize)
    apply(sources, out, model, opt.threads_for(threads, jobs), jobs, look.render, same_suffix,
          recursive=recursive, duration=duration, temporal=temporal,
          upsample=opt.upsample_for(upsample, refine), virtual_camera=virtual_camera, look=look,
          runtime=runtime)
