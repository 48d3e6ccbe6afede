"""Webcam frames through OpenCV, with a clean stop on Ctrl-C (where they go: ``segme.io.sinks``)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np


def _quiet_opencv() -> None:
    """OpenCV prints backend warnings for a missing camera; the user gets one line instead."""
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:  # builds without the logging module
        pass


def is_camera(source: str) -> bool:
    """A source that is a bare number (``0``, ``1``) names a camera."""
    return source.isdigit()


class Camera:
    """A camera (or any OpenCV capture, e.g. a file, for tests) as RGB frames.

    Args:
        source: camera index, or an already opened ``cv2.VideoCapture``.
        duration: stop after this many seconds (None: until Ctrl-C or the stream ends).
        pace: release frames at this rate (frames per second), as a device would; for a
            video file standing in for a camera (tests, latency benchmarks). None: as fast
            as the capture delivers them.

    Iterating yields uint8 [H, W, 3] RGB frames. Ctrl-C does not raise: it ends the
    iteration, so whatever is being written from the frames is finalised normally.
    """

    def __init__(self, source: int | cv2.VideoCapture, duration: float | None = None,
                 pace: float | None = None) -> None:
        _quiet_opencv()
        self.cap = source if isinstance(source, cv2.VideoCapture) else cv2.VideoCapture(source)
        if not self.cap.isOpened():
            raise FileNotFoundError(f"cannot open camera {source}: no such device, or it is busy")
        fps = pace or self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 1 <= fps <= 240 else 30.0
        # (width, height) as the device reports it, before the first frame
        self.size = (int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                     int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.duration = duration
        self.pace = pace
        self.stop = threading.Event()

    @contextmanager
    def sigint_stops(self) -> Iterator[None]:
        """While inside, Ctrl-C ends the frames instead of raising (main thread only; a
        pipeline that reads the camera in another thread wraps itself in this)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def __iter__(self) -> Iterator[np.ndarray]:
        start, n = time.monotonic(), 0
        try:
            with self.sigint_stops():
                while not self.stop.is_set():
                    if self.duration is not None and time.monotonic() - start >= self.duration:
                        break
                    ok, frame = self.cap.read()
                    if not ok:
                        break
                    if self.pace:  # wait for the frame's time on the device's clock
                        n += 1
                        time.sleep(max(0.0, start + n / self.pace - time.monotonic()))
                    yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            self.cap.release()
