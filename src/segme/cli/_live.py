"""What the verbs (mask, cutout, replace, blur) draw, and the keys that change it live.

A ``Look`` holds a verb's settings and renders every source (photos, videos, cameras)
through ``segme.effects.render``. Blur, replace and mask are views of one picture: on a
camera the view and its settings change while it runs, by keys in the window, or in the
terminal where no window opens (``TerminalKeys``); the temporal method goes on unchanged
underneath. A cut-out keeps its view (its transparency is what its file holds), and takes
pause and stop:

    b / r / m   blur, replace, mask view       n      next background (replace view)
    + / -       blur strength up / down        space  pause (the picture freezes)
    q           stop                           h      these keys
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from segme import effects

VIEWS = ("blur", "replace", "mask")  # the live views: verbs that keys switch between
KEYS = ("keys: b blur, r replace, m mask, n next background, +/- blur strength, space pause, "
        "q quit")
# what `n` offers after the --bg given: a green screen, white, a dark grey
MORE_BACKGROUNDS = (effects.DEFAULT_BACKGROUND, "white", "#262626")
STRENGTH_STEP, MAX_STRENGTH = 5.0, 100.0  # blur strength, tenths of a percent of the short side


class Background:
    """One ``--bg``: a colour, a photo or a video (played along, looping), made to each
    frame's size (a still one once per size, not once a frame).

    Args:
        spec: colour (name, #rrggbb, r,g,b), image file or video file.
        fit: ``fill`` (crop) or ``fit`` (pad) for photos and videos.
    """

    def __init__(self, spec: str, fit: str = "fill") -> None:
        from segme.io.images import read_image
        from segme.io.video import LoopingFrames, is_video

        if fit not in ("fill", "fit"):
            raise ValueError(f"--fit must be fill or fit, got {fit!r}")
        self.name, self.fit = Path(spec).name if Path(spec).suffix else spec, fit
        self.frames = LoopingFrames(spec) if is_video(spec) else None
        self.still = None if self.frames is not None else (
            read_image(spec) if Path(spec).is_file() else _color_or_missing_file(spec))
        self.color = isinstance(self.still, tuple)
        self._made: tuple[tuple[int, int], np.ndarray] | None = None

    def __call__(self, size: tuple[int, int]) -> np.ndarray | tuple[int, int, int]:
        """The background for a frame of ``size`` (height, width): uint8 [h, w, 3] RGB, or
        the colour (r, g, b) for ``effects.render``."""
        if self.color:
            return self.still
        if self.frames is not None:
            return effects.fit_background(next(self.frames), size, self.fit)
        made = self._made
        if made is None or made[0] != size:
            made = self._made = (size, effects.fit_background(self.still, size, self.fit))
        return made[1]


def _color_or_missing_file(bg: str) -> tuple[int, int, int]:
    """``--bg`` that is not a file: a colour, or a file name that does not exist."""
    from segme.io.images import IMAGE_SUFFIXES

    looks_like_file = Path(bg).suffix.lower() in IMAGE_SUFFIXES or "/" in bg or "\\" in bg
    if looks_like_file and "," not in bg:
        raise FileNotFoundError(f"--bg {bg}: background file not found")
    return effects.parse_color(bg)


class Look:
    """A verb and its settings: ``render`` draws it, ``press`` changes it.

    Args:
        view: a verb of ``segme.effects.VERBS``; keys switch among ``VIEWS``.
        strength: blur radius in tenths of a percent of the short side.
        backgrounds: the replace view's backgrounds, in the order ``n`` goes through them
            (the first is used until then).
        harmonize: colour transfer of the person towards a photo background, 0..1.
        edge: smooth-step edge tightening, 0 (off) to 0.45.

    ``paused`` and ``stopped`` are for the camera loop to read. ``render`` is safe to call
    from several threads (photos run in parallel); the keys only change attributes.
    """

    def __init__(self, view: str, strength: float = effects.DEFAULT_STRENGTH,
                 backgrounds: Sequence[Background] = (), harmonize: float = 0.0,
                 edge: float = 0.0) -> None:
        if view not in effects.VERBS:
            raise ValueError(f"view must be one of {', '.join(effects.VERBS)}, got {view!r}")
        self.view, self.strength, self.harmonize, self.edge = view, strength, harmonize, edge
        self.backgrounds = list(backgrounds)
        self.index = 0
        self.paused = self.stopped = False

    def more_backgrounds(self) -> None:
        """Add the built-in colours for ``n`` (a camera run); only when asked, so photos
        never open more than they use."""
        self.backgrounds += [Background(c) for c in MORE_BACKGROUNDS]

    def render(self, image: np.ndarray, alpha: np.ndarray, path: Path | None = None
               ) -> np.ndarray:
        """The current view of ``image`` (uint8 [H, W, 3] RGB) with its ``alpha`` (float32
        [H, W] in [0, 1]): what ``effects.render`` gives for the verb."""
        view, background = self.view, None
        if view == "replace" and self.backgrounds:
            background = self.backgrounds[self.index % len(self.backgrounds)](image.shape[:2])
        return effects.render(view, image, alpha, background=background,
                              strength=self.strength, edge=self.edge,
                              harmonize=self.harmonize)

    def status(self) -> str:
        """One line: the view and its setting, and whether the picture is paused."""
        detail = {"blur": f"blur {self.strength:g}", "mask": "mask", "cutout": "cutout",
                  "replace": f"replace: {self.backgrounds[self.index % len(self.backgrounds)].name}"
                  if self.backgrounds else "replace"}[self.view]
        return detail + (" (paused)" if self.paused else "")

    def press(self, key: str) -> str | None:
        """Apply a key (see the module docstring); returns what to tell the user, None for
        a key without a meaning."""
        views = {"b": "blur", "r": "replace", "m": "mask"}
        live = self.view in VIEWS
        if key in ("h", "?"):
            return KEYS
        if key in views and live and (views[key] != "replace" or self.backgrounds):
            self.view = views[key]
        elif key == "n" and live and self.backgrounds:
            self.index, self.view = (self.index + 1) % len(self.backgrounds), "replace"
        elif key in ("+", "=") and live:
            self.strength, self.view = min(MAX_STRENGTH, self.strength + STRENGTH_STEP), "blur"
        elif key == "-" and live:
            self.strength, self.view = max(0.0, self.strength - STRENGTH_STEP), "blur"
        elif key in (" ", "p"):
            self.paused = not self.paused
        elif key in ("q", "\x1b"):
            self.stopped = True
            return "stopping"
        else:
            return None
        return self.status()


class TerminalKeys:
    """Key presses from the terminal, one at a time without Enter, passed to ``on_key`` from
    a background thread while inside ``with``. Does nothing where standard input is not a
    terminal (a pipe, a test, a service). Ctrl-C keeps its meaning."""

    def __init__(self, on_key: Callable[[str], object]) -> None:
        self.on_key = on_key
        self.active = sys.stdin is not None and sys.stdin.isatty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True, name="segme-keys")
        self._saved = None

    def __enter__(self) -> TerminalKeys:
        if not self.active:
            return self
        if os.name == "posix":
            import termios
            import tty

            fd = sys.stdin.fileno()
            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)  # keys arrive one by one, unechoed; Ctrl-C still interrupts
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if not self.active:
            return
        self._stop.set()
        self._thread.join(timeout=1)
        if self._saved is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved)

    def _read(self) -> None:
        if os.name == "nt":
            import msvcrt
            import time

            while not self._stop.is_set():
                if msvcrt.kbhit():
                    self.on_key(msvcrt.getwch())
                else:
                    time.sleep(0.05)
            return
        import select

        fd = sys.stdin.fileno()
        while not self._stop.is_set():
            if select.select([fd], [], [], 0.1)[0]:
                data = os.read(fd, 1)
                if not data:  # the terminal went away
                    return
                self.on_key(data.decode(errors="ignore"))
