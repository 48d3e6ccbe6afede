"""Overlapping the stages of a video pipeline with threads.

Decoding (PyAV), the model call (ONNX Runtime / LiteRT), OpenCV and NumPy compositing and
encoding all release the GIL, so one thread per stage keeps both cores of a small machine
busy: while frame t is encoded, t+1 is composited, t+2 segmented and t+3 decoded.

- ``prefetch(items)``: run an iterator in a thread, a bounded queue ahead of its consumer
  (for files: nothing is dropped, the producer waits).
- ``latest(items)``: run a live source in a thread and hand out only its newest item,
  dropping the ones the consumer was too slow for (for cameras: latency stays one frame,
  not a growing queue).

Both re-raise a producer's exception in the consumer, and stop the producer when the
consumer stops early.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(x) -> bool:
        while not stop.is_set():
            try:
                q.put(x, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for x in items:
                if not put(x):
                    return
        except BaseException as e:  # re-raised in the consumer's thread
            put(_Failure(e))
            return
        put(_END)

    thread = threading.Thread(target=produce, daemon=True, name="segme-prefetch")
    thread.start()
    try:
        while True:
            x = q.get()
            if x is _END:
                return
            if isinstance(x, _Failure):
                raise x.error
            yield x
    finally:
        stop.set()
        thread.join(timeout=5)


class Latest:
    """The newest item of a live source read in a background thread; older ones dropped.

    Iterating waits for an item newer than the last one handed out. ``dropped`` counts
    the items that were replaced before anyone took them.
    """

    def __init__(self, items: Iterable[T]) -> None:
        self._items = items
        self._cond = threading.Condition()
        self._item: object = None
        self._fresh = False
        self._done = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self.dropped = 0
        self._thread = threading.Thread(target=self._produce, daemon=True, name="segme-latest")

    def _produce(self) -> None:
        try:
            for x in self._items:
                with self._cond:
                    if self._fresh:
                        self.dropped += 1
                    self._item, self._fresh = x, True
                    self._cond.notify()
                if self._stop.is_set():
                    break
        except BaseException as e:
            with self._cond:
                self._error = e
        finally:
            with self._cond:
                self._done = True
                self._cond.notify()

    def __iter__(self) -> Iterator[T]:
        self._thread.start()
        try:
            while True:
                with self._cond:
                    while not self._fresh and not self._done:
                        self._cond.wait()
                    if self._fresh:
                        x, self._fresh = self._item, False
                    elif self._error is not None:
                        raise self._error
                    else:
                        return
                yield x  # outside the lock: the producer keeps reading meanwhile
        finally:
            self._stop.set()
            self._thread.join(timeout=5)


def latest(items: Iterable[T]) -> Latest:
    """See ``Latest``."""
    return Latest(items)
