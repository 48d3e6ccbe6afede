"""Evaluate a model file on a folder of images and masks under the reference protocol.

Protocol (the one ``../shared/data/README.md`` uses for its reference numbers): the whole
image is resized to the model's input size, the predicted alpha is resized back to the
mask's size bilinearly, and binary metrics threshold both at 0.5. ``upsample="guided"``
scores what ``Segmenter`` gives by default instead (``segme.postprocess``).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from segme.data.folders import Pair, find_pairs, load_pair
from segme.evaluate.metrics import MetricAccumulator, source_of
from segme.postprocess import check_upsample
from segme.runtime import load_backend
from segme.segmenter import TTA, predict


def evaluate(
    model, data: str | Path, threads: int | None = None, limit: int | None = None,
    progress: bool = True, tta: TTA | str | None = None,
    per_image: list[dict] | None = None, upsample: str = "bilinear",
) -> dict[str, dict[str, float]]:
    """Score a model on every pair in ``data``, or on ``limit`` of them (``spread``).

    Args:
        model: ``.pt`` checkpoint or exported ``.onnx`` path, or an opened backend (anything
            with ``card`` and ``run``, see ``segme.runtime``).
        limit: score at most this many pairs, spread over the sources (``spread``).
        tta: test-time augmentation (``segme.segmenter.TTA`` or its text).
        upsample: ``bilinear`` (the reference protocol) or ``guided``.
        per_image: if given, one dict per image is appended to it, in the set's order:
            ``name``, ``source`` and that image's metrics (``MetricAccumulator.update``);
            for finding the photos a model gets wrong.

    Returns ``{"all": {...}, "<source>": {...}}`` as ``MetricAccumulator.result()`` gives,
    plus ``all["seconds_per_image"]`` for the whole loop.
    """
    check_upsample(upsample)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    backend = model if hasattr(model, "run") else load_backend(model, threads)
    tta = TTA.for_backend(tta, backend)
    pairs = spread(find_pairs(data), limit)
    acc = MetricAccumulator()
    it = pairs
    if progress:
        from rich.progress import track

        it = track(pairs, description="evaluating", transient=True)
    t0 = time.perf_counter()
    for pair in it:
        image, mask = load_pair(pair)
        scores = acc.update(predict(backend, image, tta, upsample), mask, pair.name)
        if per_image is not None:
            per_image.append({"name": pair.name, "source": source_of(pair.name), **scores})
    results = acc.result()
    results["all"]["seconds_per_image"] = (time.perf_counter() - t0) / max(1, len(pairs))
    return results


def spread(pairs: list[Pair], limit: int | None) -> list[Pair]:
    """At most ``limit`` pairs taken round-robin over the sources (``source_of``): every
    source's first pair, then every source's second, and so on, so each source gets an
    equal share (a small source all of its pairs) and per-source scores stay comparable.
    Deterministic; a larger ``limit`` keeps every pair a smaller one took. The set's order is
    kept; None: all pairs."""
    if limit is None or limit >= len(pairs):
        return pairs
    seen: Counter[str] = Counter()
    rounds = []  # (round, position): a pair's round is its rank within its source
    for i, pair in enumerate(pairs):
        source = source_of(pair.name)
        rounds.append((seen[source], i))
        seen[source] += 1
    return [pairs[i] for i in sorted(i for _, i in sorted(rounds)[:limit])]
