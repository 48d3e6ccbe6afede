"""Model-call latency of exported segme models with ONNX Runtime on this CPU.

Prints a table: median and 90th-percentile milliseconds per call (batch 1, the model's own
input size) with 1 and 2 intra-op threads, and the ratio of each median to the first
model's in the same run (timings on shared machines drift; ratios are steadier).

    python benchmarks/latency.py runs/sinet/best.onnx runs/mmnet/best.onnx --runs 300
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from segme.runtime.onnx import OnnxBackend


def time_calls(backend: OnnxBackend, runs: int, warmup: int) -> list[float]:
    h, w = backend.card.input_size
    x = np.random.default_rng(0).standard_normal((1, backend.card.in_channels, h, w))
    x = x.astype(np.float32)
    for _ in range(warmup):
        backend.run(x)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        backend.run(x)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path, help=".onnx files written by segme export")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3,
                    help="interleaved rounds over all models; the median of all calls is kept")
    args = ap.parse_args()

    samples: dict[tuple[str, int], list[float]] = {}
    backends = {(m, t): OnnxBackend(m, threads=t) for m in args.models for t in args.threads}
    for _ in range(args.rounds):  # interleave so that drift hits every model alike
        for key, b in backends.items():
            samples.setdefault((str(key[0]), key[1]), []).extend(
                time_calls(b, args.runs // args.rounds, args.warmup))
    ref = {t: statistics.median(samples[(str(args.models[0]), t)]) for t in args.threads}
    print("| model | arch | input | threads | median ms | p90 ms | ratio to first |")
    print("|---|---|---|---|---|---|---|")
    for m in args.models:
        card = backends[(m, args.threads[0])].card
        for t in args.threads:
            s = sorted(samples[(str(m), t)])
            med, p90 = statistics.median(s), s[int(0.9 * (len(s) - 1))]
            print(f"| {m} | {card.arch} | {card.input_size[0]}x{card.input_size[1]} | {t} | "
                  f"{med:.2f} | {p90:.2f} | {med / ref[t]:.2f} |")


if __name__ == "__main__":
    main()
