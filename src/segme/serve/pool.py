"""The inference pool behind the HTTP server: models loaded once, bounded work, a deadline.

A request is *admitted* (or refused at once with ``Busy``) once its body has arrived, then
its job waits for its share of the memory budget and runs on one of ``workers`` threads with
a Segmenter of its own. At most ``workers`` jobs run, at most ``queue`` admitted requests
wait, and the jobs in flight together hold at most ``memory`` bytes of the budget; the event
loop never runs a model.

Each worker thread has its own Segmenter (its own ONNX Runtime session with ``threads``
intra-op threads): workers x threads cores are used without two runs contending for one
session's thread pool, and backends whose interpreters are not thread-safe (LiteRT) need
no special case. The cost is one copy of the weights per worker, small for these models.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import queue as queue_mod
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from segme.runtime import resolve_model
from segme.segmenter import Segmenter

T = TypeVar("T")
TRIM_AFTER = 50_000_000  # bytes: a job whose budget was this large hands its heap back after


def _libc_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; musl has none
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _libc_malloc_trim()


def release_memory() -> None:
    """Return the freed heap to the OS (glibc's malloc_trim; a no-op elsewhere).

    A large job's arrays over 32 MB are mmapped and go back when freed, but the smaller ones
    land in the worker threads' malloc arenas, which glibc keeps: without this, a server
    stays at its peak (hundreds of MB) long after a burst of large images.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class Busy(Exception):
    """Every worker is busy and the waiting queue is full; try again shortly."""


class Slot:
    """One admitted request's place in the pool; released once, when its job is done (or
    when the request ends without one)."""

    def __init__(self, pool: InferencePool) -> None:
        self._pool = pool
        self._held = True
        self.handed_over = False  # a job owns the slot now: its completion releases it

    def release(self) -> None:
        if self._held:
            self._held = False
            self._pool.admitted -= 1


class Budget:
    """Bytes that the jobs in flight may hold together. A job waits, first come first
    served, until its share is free; one that asks for more than the whole runs alone.
    Event loop only."""

    def __init__(self, total: int) -> None:
        if total <= 0:
            raise ValueError(f"the memory budget must be positive, got {total}")
        self.total = total
        self.used = 0
        self._waiting: deque[tuple[int, asyncio.Future]] = deque()

    async def acquire(self, size: int) -> int:
        """Wait for ``size`` bytes (at most the whole budget); the bytes granted."""
        size = min(max(size, 0), self.total)
        if not self._waiting and self.used + size <= self.total:
            self.used += size
            return size
        entry = (size, asyncio.get_running_loop().create_future())
        self._waiting.append(entry)
        try:
            await entry[1]
        except BaseException:  # cancelled (a timeout): out of the line, or give back
            if entry in self._waiting:
                self._waiting.remove(entry)
                self._wake()  # it may have been first in line
            elif entry[1].done() and not entry[1].cancelled():
                self.release(size)
            raise
        return size

    def release(self, size: int) -> None:
        self.used -= size
        self._wake()

    def _wake(self) -> None:
        while self._waiting and self.used + self._waiting[0][0] <= self.total:
            size, future = self._waiting.popleft()
            if not future.done():  # a cancelled one leaves the line by itself
                self.used += size
                future.set_result(None)


class InferencePool:
    """``workers`` Segmenters on as many threads, with admission control.

    Args:
        model: model file (see ``Segmenter``); None: the built-in model.
        workers: jobs that run at once (one thread and one Segmenter each).
        threads: inference threads per worker; None: cores // workers (at least 1).
        queue: admitted requests that may wait for a worker; more are refused (``Busy``).
        memory: bytes that the jobs in flight may use together (``Budget``).

    Raises:
        ValueError, FileNotFoundError: a bad argument or model file (at construction: the
            models are loaded here, once).
    """

    def __init__(self, model: str | Path | None = None, workers: int = 2,
                 threads: int | None = None, queue: int = 16,
                 memory: int = 1_000_000_000) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if queue < 0:
            raise ValueError(f"queue must be 0 or more, got {queue}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.workers = workers
        self.queue_limit = queue
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self.budget = Budget(memory)
        self.model = resolve_model(model) if model is not None else None  # names included
        self._free: queue_mod.SimpleQueue[Segmenter] = queue_mod.SimpleQueue()
        first = Segmenter(model, threads=self.threads)
        self.card = first.card
        self._free.put(first)
        for _ in range(workers - 1):
            self._free.put(Segmenter(model, threads=self.threads))
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="segme-worker")
        self._lock = threading.Lock()
        self.admitted = 0  # requests between admission and job completion (event loop only)
        self.running = 0  # jobs on a worker now (worker threads, under _lock)
        self.closed = False

    @property
    def waiting(self) -> int:
        """Admitted requests not running yet (reading their upload or queued)."""
        return max(0, self.admitted - self.running)

    def admit(self) -> Slot:
        """A place for one request, or ``Busy``. Call from the event loop only."""
        if self.closed:
            raise Busy("the server is shutting down")
        if self.admitted >= self.workers + self.queue_limit:
            raise Busy(f"all {self.workers} workers are busy and {self.queue_limit} requests "
                       "are waiting; retry shortly")
        self.admitted += 1
        return Slot(self)

    async def run(self, slot: Slot, job: Callable[[Segmenter], T], timeout: float,
                  memory: int = 0) -> T:
        """Run ``job(segmenter)`` on a worker once ``memory`` bytes of the budget are free;
        its result, or its exception re-raised.

        The slot and the memory are released when the job is done, not when this returns: a
        timed-out job that is already running cannot be stopped, and until it ends it still
        holds a worker and its arrays, so admission and the budget must keep counting it.

        Raises:
            TimeoutError: no result within ``timeout`` seconds (the waits for memory and for
                a worker included); a job still waiting is cancelled and never runs.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            granted = await asyncio.wait_for(self.budget.acquire(memory), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no result within {timeout:g} s") from None
        try:
            future = self._executor.submit(self._call, job, granted)
        except RuntimeError:  # shut down meanwhile
            self.budget.release(granted)
            raise
        slot.handed_over = True

        def finish() -> None:
            slot.release()
            self.budget.release(granted)

        def done(_: Future) -> None:
            try:
                loop.call_soon_threadsafe(finish)
            except RuntimeError:  # the loop is closed: the server has stopped
                pass

        future.add_done_callback(done)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), deadline - loop.time())
        except asyncio.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no result within {timeout:g} s") from None

    def _call(self, job: Callable[[Segmenter], T], memory: int) -> T:
        seg = self._free.get()  # never blocks: one Segmenter per worker thread
        with self._lock:
            self.running += 1
        try:
            return job(seg)
        finally:
            with self._lock:
                self.running -= 1
            self._free.put(seg)
            if memory >= TRIM_AFTER:
                release_memory()

    def close(self) -> None:
        """Refuse new requests, drop queued jobs; running ones finish in the background."""
        self.closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
