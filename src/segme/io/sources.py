"""Turning a user's SOURCE arguments into images to read.

A source is an image file, a folder (its images; with ``recursive`` its subfolders' too), a
glob pattern (what the shell did not expand; ``**`` with ``recursive``), ``-`` (one image on
standard input) or an ``http(s)://`` address (fetched when given, never otherwise). Videos
and cameras are told apart by the verbs (``segme.io.video.is_video``,
``segme.io.camera.is_camera``) before they get here.
"""

from __future__ import annotations

import glob
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segme.io.images import IMAGE_SUFFIXES, ImageError, decode_image, read_image

STDIN = "-"
# what one fetched or piped image may weigh: far above any photo, far below a machine's memory
MAX_DOWNLOAD = 100 * 1024 * 1024
FETCH_TIMEOUT = 30.0


def is_url(text: str) -> bool:
    return text[:8].lower().startswith(("http://", "https://"))


@dataclass(frozen=True)
class ImageInput:
    """One image to process.

    Attributes:
        name: how messages name it (the path, the address, or "standard input").
        rel: its output name under the output folder, without suffix: the file's stem, or
            ``sub/folder/stem`` for a file found in a subfolder of a folder source.
        path: the local file; None for standard input and addresses.
        suffix: the input's own suffix, lower case ("" when unknown), for outputs that keep
            the input's format.
    """

    name: str
    rel: Path
    path: Path | None = None
    suffix: str = ""

    def read(self) -> np.ndarray:
        """The image as uint8 [H, W, 3] RGB (``ImageError`` with one line when unusable)."""
        if self.path is not None:
            return read_image(self.path)
        if self.name == "standard input":
            return decode_image(_read_limited(sys.stdin.buffer, self.name), self.name)
        return decode_image(fetch(self.name), self.name)


def _read_limited(stream, name: str) -> bytes:
    data = stream.read(MAX_DOWNLOAD + 1)
    if len(data) > MAX_DOWNLOAD:
        raise ImageError(f"cannot read {name}: more than {MAX_DOWNLOAD >> 20} MB")
    return data


def fetch(url: str, timeout: float = FETCH_TIMEOUT) -> bytes:
    """The body of ``url`` (http or https), at most ``MAX_DOWNLOAD`` bytes.

    Raises:
        ImageError: the address cannot be reached or answers with an error (one line).
    """
    from segme._version import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"segme/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310 (http/s only)
            return _read_limited(reply, url)
    except urllib.error.HTTPError as e:
        raise ImageError(f"cannot fetch {url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise ImageError(f"cannot fetch {url}: {e.reason} (offline?)") from None
    except (OSError, ValueError) as e:  # timeouts, resets, malformed addresses
        raise ImageError(f"cannot fetch {url}: {str(e) or type(e).__name__}") from None


def _url_input(url: str) -> ImageInput:
    last = Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    stem = Path(last).stem.strip(". ") or "download"
    suffix = Path(last).suffix.lower()
    return ImageInput(url, Path(stem), None, suffix if suffix in IMAGE_SUFFIXES else "")


def _file_input(path: Path, root: Path | None = None) -> ImageInput:
    rel = path.relative_to(root).with_suffix("") if root is not None else Path(path.stem)
    return ImageInput(str(path), rel, path, path.suffix.lower())


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def _walk(folder: Path, recursive: bool, exclude: Path | None) -> list[Path]:
    """The images of ``folder`` (and its subfolders), sorted; hidden files and folders, and
    anything under ``exclude`` (the output folder), left out."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    skip = exclude.resolve() if exclude is not None else None
    if skip == folder.resolve():
        skip = None  # writing into the source folder itself: its outputs are sorted out later
    files = []
    for p in found:
        parts = p.relative_to(folder).parts
        if any(part.startswith(".") for part in parts) or not _is_image(p):
            continue
        if skip is not None and p.resolve().is_relative_to(skip):
            continue
        files.append(p)
    return sorted(files)


def expand_sources(sources: list[str], recursive: bool = False, exclude: Path | None = None,
                   notes: list[str] | None = None) -> list[ImageInput]:
    """SOURCE arguments -> the images they name, in order (each folder's sorted).

    ``exclude``: a folder whose files are never inputs (the output folder). ``notes``
    collects what the user should know, e.g. subfolders left unread without ``recursive``.

    Raises:
        FileNotFoundError: a source that names nothing, or a folder or glob without images.
        ValueError: ``-`` given twice (standard input holds one image).
    """
    inputs: list[ImageInput] = []
    if sources.count(STDIN) > 1:
        raise ValueError("'-' (standard input) can be given once")
    for text in sources:
        path = Path(text)
        if text == STDIN:
            inputs.append(ImageInput("standard input", Path("stdin")))
        elif is_url(text):
            inputs.append(_url_input(text))
        elif path.is_file():
            inputs.append(_file_input(path))
        elif path.is_dir():
            files = _walk(path, recursive, exclude)
            if not files:
                where = " or its subfolders" if recursive else ""
                hint = "" if recursive or not any(p.is_dir() for p in path.iterdir()) else \
                    " (it has subfolders: --recursive reads them)"
                raise FileNotFoundError(f"no images ({' '.join(IMAGE_SUFFIXES)}) in folder "
                                        f"{path}{where}{hint}")
            inputs.extend(_file_input(f, path if recursive else None) for f in files)
            if not recursive and notes is not None:
                subs = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")
                        and (exclude is None or p.resolve() != exclude.resolve())]
                if subs:
                    notes.append(f"{len(subs)} subfolder(s) of {path} not read; --recursive "
                                 "reads them")
        elif any(ch in text for ch in "*?["):
            files = sorted(Path(p) for p in glob.glob(text, recursive=recursive)
                           if _is_image(Path(p)))
            if not files:
                raise FileNotFoundError(f"no images match {text!r}")
            inputs.extend(_file_input(f) for f in files)
        else:
            raise FileNotFoundError(f"source not found: {path}")
    return inputs


def expand_images(source: str | Path) -> list[Path]:
    """A file, a folder (its images, not recursive) or a glob pattern -> sorted image paths.

    Raises:
        FileNotFoundError: nothing matches, with what was looked for.
    """
    text = str(source)
    if text == STDIN or is_url(text):
        raise FileNotFoundError(f"source not found: {text} (a file, folder or glob is needed)")
    return [i.path for i in expand_sources([text]) if i.path is not None]
