"""Model-call latency of exported segme models with ONNX Runtime on this CPU.

Prints a Markdown table: median milliseconds per call (batch 1, each model's own input
size) with 1 and 2 intra-op threads, and each median's ratio to the first model's in the
same run (timings on shared machines drift; ratios within one run are steadier).

    python benchmarks/latency.py runs/sinet/best.onnx runs/mmnet/best.onnx --runs 400
"""

from __future__ import annotations

import argparse
from pathlib import Path

from segme.evaluate.speed import interleaved_medians
from segme.runtime.onnx import OnnxBackend


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path, help=".onnx files written by segme export")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=400, help="timed calls per model and thread count")
    args = ap.parse_args()

    backends = {(m, t): OnnxBackend(m, threads=t) for m in args.models for t in args.threads}
    med = interleaved_medians(backends, args.runs)
    print("| model | arch | input | threads | median ms | ratio to first |")
    print("|---|---|---|---|---|---|")
    for m in args.models:
        card = backends[(m, args.threads[0])].card
        for t in args.threads:
            ratio = med[(m, t)] / med[(args.models[0], t)]
            print(f"| {m} | {card.arch} | {card.input_size[0]}x{card.input_size[1]} | {t} | "
                  f"{med[(m, t)]:.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
