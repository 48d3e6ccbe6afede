"""Latency of a model call, measured the same way everywhere (no torch)."""

from __future__ import annotations

import statistics
import time

import numpy as np


def time_calls(backend, runs: int = 100, warmup: int = 10) -> list[float]:
    """Milliseconds of ``backend.run`` on one input of the card's size, batch 1.

    Args:
        backend: anything with ``card`` and ``run(x)`` (see ``segme.runtime``).
        runs: timed calls.
        warmup: untimed calls first (allocations, thread-pool start-up).
    """
    h, w = backend.card.input_size
    x = np.random.default_rng(0).standard_normal((1, backend.card.in_channels, h, w))
    x = x.astype(np.float32)
    for _ in range(warmup):
        backend.run(x)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        backend.run(x)
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def interleaved_medians(backends: dict, runs: int = 200, rounds: int = 4,
                        warmup: int = 10) -> dict:
    """Median ms per backend, timing all of them in turn for ``rounds`` rounds.

    Interleaving spreads the drift of a shared machine over every model alike, so ratios
    between models measured in one call are fair even when absolute times wander.
    """
    samples: dict = {k: [] for k in backends}
    for _ in range(rounds):
        for key, b in backends.items():
            samples[key] += time_calls(b, max(1, runs // rounds), warmup)
    return {k: statistics.median(v) for k, v in samples.items()}
