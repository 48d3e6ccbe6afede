"""Latency of candidate architectures before training them: the speed half of a search.

Each candidate is ``arch[:key=value,...]@size`` (e.g. ``sinet:width=1.25@224``). It is
built with random weights, exported to ONNX and to TFLite, and its model call is timed
with ONNX Runtime and LiteRT (XNNPACK) at 1 and 2 threads, interleaved with MediaPipe's
selfie segmenter in the same run. Weights do not change the cost of a call, so this picks
which shapes are worth training under a latency budget.

    python benchmarks/search.py sinet@192 sinet@224 mnv3_unet:width=0.5@256 \
        --mediapipe cache/selfie_segmentation.tflite --runs 200
"""

from __future__ import annotations

import argparse
import ast
import tempfile
from pathlib import Path

from zoo import mediapipe_backend

from segme.cli._options import parse_size
from segme.cli.models import profile
from segme.evaluate.speed import interleaved_medians
from segme.export.onnx import export_onnx
from segme.export.tflite import export_tflite
from segme.models import create_model
from segme.runtime.litert import LiteRTBackend
from segme.runtime.onnx import OnnxBackend


def parse_candidate(text: str) -> tuple[str, dict, int | tuple[int, int]]:
    """``"sinet:width=1.25@224"`` -> ("sinet", {"width": 1.25}, 224); ``@256x192`` gives
    (256, 192), height by width."""
    spec, _, size = text.partition("@")
    arch, _, kw = spec.partition(":")
    kwargs = {}
    for item in filter(None, kw.split(",")):
        k, _, v = item.partition("=")
        try:
            kwargs[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            kwargs[k] = v
    return arch, kwargs, parse_size(size or "224")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("candidates", nargs="+", help="arch[:k=v,...]@size")
    ap.add_argument("--mediapipe", type=Path, help="MediaPipe selfie_segmentation.tflite")
    ap.add_argument("--runs", type=int, default=200, help="timed calls per file and threads")
    ap.add_argument("--no-onnx", action="store_true", help="time LiteRT only")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="segme-search-"))
    rows, backends = [], {}
    for i, text in enumerate(args.candidates):
        arch, kwargs, size = parse_candidate(text)
        try:
            model = create_model(arch, **kwargs).eval()
            card = model.card(size)
        except (ValueError, TypeError) as e:  # unknown name, keyword or a size off the grid
            ap.error(f"{text}: {e}")
        prof = profile(arch, size, **kwargs)
        files = [("litert", export_tflite(model, tmp / f"{i}.tflite", card))]
        if not args.no_onnx:
            files.append(("onnx", export_onnx(model, tmp / f"{i}.onnx", card)))
        for runtime, f in files:
            rows.append((text, runtime, prof, f))
            for t in (1, 2):
                backends[(f, t)] = (LiteRTBackend(f, threads=t) if runtime == "litert"
                                    else OnnxBackend(f, threads=t))
        print(f"exported {text}", flush=True)
    if args.mediapipe:
        rows.append(("MediaPipe selfie (general)@256", "litert", None, args.mediapipe))
        for t in (1, 2):
            backends[(args.mediapipe, t)] = mediapipe_backend(args.mediapipe, t)

    med = interleaved_medians(backends, args.runs)
    ref = args.mediapipe
    print("\n| candidate | runtime | params | MMACs | ms 1 thread | ms 2 threads "
          "| ratio to MediaPipe 1t / 2t |")
    print("|---|---|---|---|---|---|---|")
    for text, runtime, prof, f in rows:
        p = f"{prof['params'] / 1e3:.0f} K | {prof['macs'] / 1e6:.0f}" if prof else "- | -"
        ratio = (f"{med[(f, 1)] / med[(ref, 1)]:.2f} / {med[(f, 2)] / med[(ref, 2)]:.2f}"
                 if ref else "-")
        print(f"| {text} | {runtime} | {p} | {med[(f, 1)]:.2f} | {med[(f, 2)]:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
