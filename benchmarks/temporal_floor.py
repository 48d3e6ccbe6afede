"""How low can a temporal method push dtSSD on the motion set? A measured floor.

``segme eval-video`` scores the temporal methods on clips filmed by a virtual camera over
validation photos (``segme.data.motion``). dtSSD compares the change of the predicted
alpha between two frames with the change of the true alpha. A temporal method can only
remove error that changes from frame to frame; error that moves with the picture (a
fragment the model gets wrong in every frame, an outline that is softer than the truth's)
changes the alpha as the camera moves, and dtSSD counts that too.

This script measures how much of dtSSD is of that second kind. Beside plain per-frame
inference (``none``) and any methods of ``--temporal``, it scores oracles made with the
camera path of each clip, which no method running on the frames can know:

- ``rigid``: the model's alpha of the still photo, warped into every frame by the clip's
  own camera path (``motion_clip`` applied to the alpha instead of the mask). It has no
  flicker at all and the model's own errors, so its dtSSD is what a perfect temporal
  method would reach without making single frames more accurate.
- ``rigid, hard``: the same thresholded at 0.5 before warping (the outline placed where
  the model places it, but as sharp as the truth's).
- ``none, hard``: per-frame alpha thresholded at 0.5.

    python benchmarks/temporal_floor.py --data ../shared/data/portraits/val \
        --temporal ema,flow --threads 1

The clips are the ones ``segme eval-video`` makes with the same ``--clips`` and
``--frames`` (every k-th pair of the sorted folder, seeded by its index).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from segme.data.folders import find_pairs, load_pair
from segme.data.motion import motion_clip
from segme.evaluate.temporal import TemporalAccumulator
from segme.evaluate.video import run_clip
from segme.segmenter import Segmenter
from segme.temporal import parse_method


def _score(acc: TemporalAccumulator, alphas, clip, truths) -> None:
    for a, f, g in zip(alphas, clip, truths):
        acc.add(a, f, g)
    acc.end_clip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="folder of images with masks")
    ap.add_argument("--model", type=Path, help="model file (default: the built-in model)")
    ap.add_argument("--temporal", default="ema,flow",
                    help="methods to score beside none (comma-separated; '' for none)")
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write all numbers here")
    args = ap.parse_args()

    seg = Segmenter(args.model, args.threads, upsample="bilinear")  # docs/video.md protocol
    methods = ["none", *(m for m in args.temporal.split(",") if m)]
    for m in methods:
        parse_method(m, seg.card)
    rows = [*methods, "none, hard", "rigid", "rigid, hard"]
    accs = {r: TemporalAccumulator() for r in rows}
    every = find_pairs(args.data)
    pairs = every[:: max(1, len(every) // args.clips)][: args.clips]
    for index, pair in enumerate(pairs):
        image, mask = load_pair(pair)
        clip, truths = motion_clip(image, mask, frames=args.frames, seed=index)
        plain = list(seg.stream(clip, temporal="none"))
        _score(accs["none, hard"], [(a >= 0.5).astype(np.float32) for a in plain], clip, truths)
        for m in methods:
            if m == "none":
                _score(accs[m], plain, clip, truths)
            else:
                run_clip(seg, m, clip, accs[m], truths)
        still = seg(image)  # the photo itself, at its own size
        for row, alpha in (("rigid", still), ("rigid, hard", (still >= 0.5).astype(np.float32))):
            _, moved = motion_clip(image, alpha, frames=args.frames, seed=index)
            _score(accs[row], moved, clip, truths)
        print(f"clip {index + 1}/{len(pairs)}", flush=True)

    results = {r: accs[r].results() for r in rows}
    base = results["none"]["dtssd"]
    print("\n| prediction | fg-IoU | dtSSD | dtSSD vs none | instability (still band) |")
    print("|---|---:|---:|---:|---:|")
    for r, v in results.items():
        inst = "-" if v["instability"] is None else f"{v['instability']:.2f}"
        print(f"| {r} | {v['fg_iou']:.2f} | {v['dtssd']:.2f} | "
              f"{100.0 * (v['dtssd'] / base - 1.0):+.0f}% | {inst} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
