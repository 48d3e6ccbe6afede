"""Where a live camera's frames go: a video file, a window, a virtual camera (any number).

A sink takes rendered frames one at a time (``write``) and is closed once (``close``):
uint8 [H, W, 3] RGB, [H, W] grey (a mask) or, for a file only, [H, W, 4] RGBA. ``live``
says whether it shows the present (a window, a virtual camera: while the picture is paused
they keep getting the frozen frame) or records (a file: a pause leaves a gap, not a still).
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

import cv2
import numpy as np

_END = object()


class Sink(Protocol):
    live: bool

    def write(self, frame: np.ndarray) -> None:
        """Take the next frame (uint8 [H, W, 3] RGB or [H, W] grey)."""

    def close(self) -> None:
        """Finish (flush, release the device); raise what went wrong in the meantime."""


def rgb(frame: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] of a grey [H, W] or RGB(A) frame (a device takes no alpha)."""
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB) if frame.ndim == 2 else frame[:, :, :3]


class FileSink:
    """Frames handed to a pull-style writer (``write(frames) -> result``, e.g. an encoder)
    running in its own thread, so encoding overlaps the next frame. ``result`` holds what
    the writer returned once ``close`` has come back.

    Args:
        write: consumes an iterator of frames; its exception is raised by the next
            ``write`` or by ``close``.
        depth: frames that may wait for the writer before ``write`` blocks.
    """

    live = False

    def __init__(self, write: Callable[[Iterator[np.ndarray]], object], depth: int = 2) -> None:
        self.result: object = None
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(write,), daemon=True,
                                        name="segme-file-sink")
        self._thread.start()

    def _run(self, write: Callable[[Iterator[np.ndarray]], object]) -> None:
        try:
            self.result = write(self._frames())
        except BaseException as e:  # raised in the caller's thread
            self._error = e

    def _frames(self) -> Iterator[np.ndarray]:
        while (frame := self._queue.get()) is not _END:
            yield frame

    def _put(self, item: object) -> None:
        while self._thread.is_alive():
            try:
                self._queue.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def write(self, frame: np.ndarray) -> None:
        if self._error is not None:
            raise self._error
        self._put(frame)

    def close(self) -> None:
        self._put(_END)
        self._thread.join()
        if self._error is not None:
            raise self._error


class Window:
    """A live window with the frame rate and a status line drawn on it; its keys go to
    ``on_key`` (closing the window sends ``q``).

    ``Window.open()`` returns None where OpenCV has no GUI support or there is no display
    (opencv-python-headless, a server).
    """

    live = True

    def __init__(self, title: str, on_key: Callable[[str], object] | None = None,
                 status: Callable[[], str] | None = None) -> None:
        self.title, self.on_key, self.status = title, on_key, status
        self.last = time.perf_counter()
        self.fps = 0.0
        self._shown = False  # seen visible once: some backends report -1 (unknown) instead

    @classmethod
    def open(cls, title: str = "segme", on_key: Callable[[str], object] | None = None,
             status: Callable[[], str] | None = None) -> Window | None:
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            return None
        return cls(title, on_key, status)

    def draw(self, frame: np.ndarray) -> np.ndarray:
        """The frame as the window shows it: BGR, with the frame rate and status on it."""
        now = time.perf_counter()
        rate = 1.0 / max(1e-6, now - self.last)
        self.fps = 0.9 * self.fps + 0.1 * rate if self.fps else rate
        self.last = now
        bgr = cv2.cvtColor(rgb(frame), cv2.COLOR_RGB2BGR)
        text = f"{self.fps:.1f} fps" + (f"  {self.status()}" if self.status else "")
        cv2.putText(bgr, text, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2,
                    cv2.LINE_AA)
        return bgr

    def write(self, frame: np.ndarray) -> None:
        cv2.imshow(self.title, self.draw(frame))
        key = cv2.waitKey(1) & 0xFF
        visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE)
        closed = self._shown and visible < 1  # the user closed it
        self._shown = self._shown or visible >= 1
        if self.on_key is not None and (closed or key != 0xFF):
            self.on_key("q" if closed or key == 27 else chr(key))

    def close(self) -> None:
        cv2.destroyWindow(self.title)


# what to install where no virtual camera device exists, per platform
VIRTUAL_CAMERA_HINTS = {
    "linux": "install and load v4l2loopback: sudo apt install v4l2loopback-dkms && sudo "
             "modprobe v4l2loopback exclusive_caps=1 card_label=segme",
    "win32": "install OBS Studio (26 or later), which brings its virtual camera",
    "darwin": "install OBS Studio (30 or later) and start its virtual camera once, which "
              "installs the system extension",
}


class NoVirtualCamera(OSError):
    """No virtual camera device to send to (the message says what to install)."""


class VirtualCamera:
    """Frames to a virtual camera that video-call apps (Zoom, Meet, Teams, OBS) list as a
    webcam, through ``pyvirtualcam``: v4l2loopback on Linux, OBS's virtual camera on
    Windows and macOS.

    Args:
        width, height: the frame size the device announces; a frame of another size is
            resized to it.
        fps: the frame rate it announces. Frames are sent as they come (the camera paces
            them): waiting for the device's clock would add latency.
        device: a device name (``/dev/video2``), or None for the first free one.
        backend: a ``pyvirtualcam`` backend name, or None for the platform's.

    Raises:
        ImportError: pyvirtualcam is missing (the message has the pip command).
        NoVirtualCamera: no device exists or it cannot be opened (the message says what
            to install).
    """

    live = True

    def __init__(self, width: int, height: int, fps: float, device: str | None = None,
                 backend: str | None = None) -> None:
        try:
            import pyvirtualcam
        except ModuleNotFoundError:
            raise ImportError("--virtual-camera needs pyvirtualcam: pip install "
                              "'segme[camera]'") from None
        try:
            self.camera = pyvirtualcam.Camera(width, height, fps, device=device,
                                              backend=backend,
                                              fmt=pyvirtualcam.PixelFormat.RGB)
        except RuntimeError as e:
            hint = VIRTUAL_CAMERA_HINTS.get(sys.platform, "install OBS Studio")
            reason = (str(e).strip().splitlines() or [""])[0].split(". ")[0]  # pyvirtualcam's
            raise NoVirtualCamera(f"no virtual camera device ({reason}); {hint}") from None
        self.size = (width, height)
        self.device: str = self.camera.device  # e.g. /dev/video2, "OBS Virtual Camera"
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        frame = rgb(frame)
        if (frame.shape[1], frame.shape[0]) != self.size:
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        self.camera.send(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self) -> None:
        self.camera.close()
