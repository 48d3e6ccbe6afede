"""Turning a user's ``source`` argument into image files (video and webcam come later)."""

from __future__ import annotations

import glob
from pathlib import Path

from segme.io.images import IMAGE_SUFFIXES


def expand_images(source: str | Path) -> list[Path]:
    """A file, a folder (its images, not recursive) or a glob pattern -> sorted image paths.

    Raises:
        FileNotFoundError: nothing matches, with what was looked for.
    """
    text = str(source)
    path = Path(text)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                       and not p.name.startswith("."))
        if not files:
            raise FileNotFoundError(f"no images ({' '.join(IMAGE_SUFFIXES)}) in folder {path}")
        return files
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(text)
                       if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"no images match {text!r}")
        return files
    raise FileNotFoundError(f"source not found: {path}")
