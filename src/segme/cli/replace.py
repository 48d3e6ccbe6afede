"""``segme replace``: a new background behind the person (a colour or a photo)."""

from __future__ import annotations

from pathlib import Path

import typer

from segme.cli import _options as opt


def replace(sources: list[str] = opt.SOURCES,
            bg: str = typer.Option(..., help="Colour (name, #rrggbb, r,g,b), an image file, or "
                                   "a video file (played along, looping)."),
            out: str = opt.OUT, recursive: bool = opt.RECURSIVE, model: Path = opt.MODEL,
            threads: int = opt.THREADS,
            jobs: int = opt.JOBS, duration: float = opt.DURATION, temporal: str = opt.TEMPORAL,
            upsample: str = opt.UPSAMPLE, refine: bool = opt.REFINE,
            fit: str = typer.Option("fill", help="Background image: fill (crop) or fit (pad)."),
            harmonize: float = typer.Option(0.0, help="Colour transfer towards the background, 0..1."),
            ) -> None:
    """Replace the background with a colour or a photo: <out>/<stem>, same format as the input."""
    from segme import effects
    from segme.cli._apply import apply, same_suffix
    from segme.io.images import read_image
    from segme.io.video import LoopingFrames, is_video

    if fit not in ("fill", "fit"):
        raise ValueError(f"--fit must be fill or fit, got {fit!r}")
    moving = is_video(bg)
    if moving:
        frames = LoopingFrames(bg)
        next_background = lambda: next(frames)  # noqa: E731
    else:
        still = read_image(bg) if Path(bg).is_file() else _color_or_missing_file(bg)
        next_background = lambda: still  # noqa: E731
    made: list = [None]  # (frame size, a still background made to that size)

    def render(image, alpha, path):
        if refine:
            alpha = effects.refine(alpha, image)
        background = next_background()
        if harmonize and not isinstance(background, tuple):
            image = effects.color_transfer(image, alpha, background, harmonize)
        if not moving:  # fitted (or filled) once for a video's frames, not once a frame
            size, cached = image.shape[:2], made[0]
            if cached is None or cached[0] != size:
                cached = made[0] = (size, effects.solid(size, background)
                                    if isinstance(background, tuple)
                                    else effects.fit_background(background, size, fit))
            background = cached[1]
        return effects.replace_background(image, alpha, background, fit)

    apply(sources, out, model, opt.threads_for(threads, jobs), jobs, render, same_suffix,
          recursive=recursive, duration=duration, temporal=temporal, upsample=upsample)


def _color_or_missing_file(bg: str) -> tuple[int, int, int]:
    """``--bg`` that is not a file: a colour, or a file name that does not exist."""
    from segme import effects
    from segme.io.images import IMAGE_SUFFIXES

    looks_like_file = Path(bg).suffix.lower() in IMAGE_SUFFIXES or "/" in bg or "\\" in bg
    if looks_like_file and "," not in bg:
        raise FileNotFoundError(f"--bg {bg}: background file not found")
    return effects.parse_color(bg)
