"""Bilinear against guided upsampling of the alpha: accuracy per model, and what it costs.

Every model is scored on a validation folder twice with ``segme eval``'s code, once under
the reference protocol (the alpha resized bilinearly) and once with guided upsampling
(``segme.postprocess``: the image as the guide), MediaPipe's selfie segmenter included
(``--mediapipe``; same pre-processing, same two upsamplings). Then the upsampling step
alone is timed at 800x600 (a val photo), 1280x720 and 1920x1080 from a 224x224 alpha (a
soft-edged ellipse), both modes interleaved, one thread (OpenCV's), median of ``--runs``.

    python benchmarks/upsample.py --data ../shared/data/portraits/val \\
        --mediapipe cache/selfie_segmentation.tflite

Models: the built-in ones by default, or any ``.onnx`` / ``.tflite`` files given.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from zoo import mediapipe_backend

from segme.cards import ModelCard
from segme.evaluate.run import evaluate
from segme.postprocess import UPSAMPLE, restore
from segme.preprocess import prepare
from segme.runtime import WEIGHTS, load_backend

SIZES = ((800, 600), (1280, 720), (1920, 1080))  # width x height


def score(backends: dict, data: Path, limit: int | None) -> list[dict]:
    rows = []
    for name, backend in backends.items():
        for mode in UPSAMPLE[::-1]:  # bilinear (the reference) first
            res = evaluate(backend, data, limit=limit, progress=False, upsample=mode)
            rows.append({"model": name, "upsample": mode, "results": res})
            print(f"scored {name} ({mode}): fg-IoU {res['all']['fg_iou']:.2f}", flush=True)
    return rows


def upsample_ms(runs: int) -> dict:
    """Median ms of each mode per output size, the modes interleaved call by call."""
    rng = np.random.default_rng(0)
    # a person-like alpha: a soft-edged ellipse, so the uncertain band is a ring as in use
    low = np.zeros((224, 224), np.float32)
    cv2.ellipse(low, (112, 150), (70, 110), 0, 0, 360, 1.0, -1)
    low = cv2.GaussianBlur(low, (0, 0), 3)
    card = ModelCard(arch="timing", input_size=(224, 224))
    out = {}
    for w, h in SIZES:
        image = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 0)
        # as in use: the grey guide at the model's size comes with the pre-processing's resize
        meta = prepare(image, card)[1]
        calls = {"bilinear": lambda meta=meta: restore(low, meta),
                 "guided": lambda meta=meta, image=image: restore(low, meta, guide=image)}
        samples: dict[str, list[float]] = {k: [] for k in calls}
        for _ in range(5):  # warm-up
            for f in calls.values():
                f()
        for _ in range(runs):
            for k, f in calls.items():
                t0 = time.perf_counter()
                f()
                samples[k].append((time.perf_counter() - t0) * 1000.0)
        out[f"{w}x{h}"] = {k: statistics.median(v) for k, v in samples.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("models", nargs="*", type=Path, help="default: the built-in models")
    ap.add_argument("--data", type=Path, required=True, help="validation folder")
    ap.add_argument("--mediapipe", type=Path, help="MediaPipe selfie_segmentation.tflite")
    ap.add_argument("--threads", type=int, default=2, help="model threads while scoring")
    ap.add_argument("--runs", type=int, default=200, help="timed calls per size and mode")
    ap.add_argument("--limit", type=int,
                    help="score only N pairs, spread over the sources (quick checks)")
    ap.add_argument("--json", type=Path, help="also write all numbers here")
    args = ap.parse_args()

    cv2.setNumThreads(1)
    files = args.models or sorted(WEIGHTS.glob("*.onnx"))
    backends = {f.stem: load_backend(f, args.threads) for f in files}
    if args.mediapipe:
        backends["MediaPipe selfie (general)"] = mediapipe_backend(args.mediapipe, args.threads)
    rows = score(backends, args.data, args.limit)
    timing = upsample_ms(args.runs)

    print(f"\nfg-IoU and boundary IoU on {args.data}, threshold 0.5\n")
    print("| model | input | upsampling | fg-IoU all | pfcn | picsart | ccp | boundary IoU "
          "| MAD | change in fg-IoU / boundary IoU |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    base = {}
    for r in rows:
        a, card = r["results"], backends[r["model"]].card
        if r["upsample"] == "bilinear":
            base[r["model"]] = a["all"]
        ref = base[r["model"]]
        src = [f"{a[s]['fg_iou']:.2f}" if s in a else "-" for s in ("pfcn", "picsart", "ccp")]
        change = (f"{a['all']['fg_iou'] - ref['fg_iou']:+.2f} / "
                  f"{a['all']['boundary_iou'] - ref['boundary_iou']:+.1f}")
        print(f"| {r['model']} | {card.input_size[1]}x{card.input_size[0]} | {r['upsample']} | "
              f"{a['all']['fg_iou']:.2f} | {' | '.join(src)} | {a['all']['boundary_iou']:.1f} "
              f"| {a['all']['mad']:.4f} | {change if r['upsample'] != 'bilinear' else '-'} |")

    print(f"\nupsampling a 224x224 alpha, ms (median of {args.runs}, one thread)\n")
    print("| output | bilinear | guided | guided / bilinear |")
    print("|---|---|---|---|")
    for size, t in timing.items():
        print(f"| {size} | {t['bilinear']:.2f} | {t['guided']:.2f} | "
              f"{t['guided'] / t['bilinear']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"scores": rows, "ms": timing}, indent=2) + "\n")


if __name__ == "__main__":
    main()
