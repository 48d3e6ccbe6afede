"""Model-call latency of exported segme models on this CPU (ONNX Runtime or LiteRT).

Prints a Markdown table: median milliseconds per call (batch 1, each model's own input
size) with 1 and 2 intra-op threads, all files timed in turn in one run, and each median's
ratio to the reference's in the same run: MediaPipe's selfie segmenter with ``--mediapipe``,
else the first file (timings on shared machines drift; ratios within one run are steadier).
Run it on an otherwise idle machine: a busy second core makes 2-thread timings meaningless.

    python benchmarks/latency.py src/segme/weights/*.onnx runs/lite/best.tflite \
        --mediapipe cache/selfie_segmentation.tflite --runs 400
"""

from __future__ import annotations

import argparse
from pathlib import Path

from zoo import mediapipe_backend

from segme.evaluate.speed import interleaved_medians
from segme.runtime.litert import LiteRTBackend
from segme.runtime.onnx import OnnxBackend


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path,
                    help=".onnx / .tflite files written by segme export")
    ap.add_argument("--mediapipe", type=Path, help="MediaPipe selfie_segmentation.tflite")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=400, help="timed calls per model and thread count")
    args = ap.parse_args()

    def load(m: Path, t: int):
        if m == args.mediapipe:
            return mediapipe_backend(m, t)
        return (LiteRTBackend if m.suffix == ".tflite" else OnnxBackend)(m, threads=t)

    files = list(args.models) + ([args.mediapipe] if args.mediapipe else [])
    ref = args.mediapipe or files[0]
    backends = {(m, t): load(m, t) for m in files for t in args.threads}
    med = interleaved_medians(backends, args.runs)
    print(f"| model | arch | input | threads | median ms | ratio to {ref.name} |")
    print("|---|---|---|---|---|---|")
    for m in files:
        card = backends[(m, args.threads[0])].card
        for t in args.threads:
            ratio = med[(m, t)] / med[(ref, t)]
            print(f"| {m} | {card.arch} | {card.input_size[0]}x{card.input_size[1]} | {t} | "
                  f"{med[(m, t)]:.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
