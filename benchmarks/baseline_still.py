"""The background-subtraction baseline's best case: a camera that never moves.

``segme eval-video --temporal ...,bgsub`` scores the seed's baseline (``segme.bgsub``) on
the motion clips, where the camera moves away from the view its empty scene was captured
in. This script films the same photos with a camera that holds still for the whole clip
(every frame the clip's first), so that what is left is the baseline's own accuracy: grey
difference, threshold, closing, largest blob, given the photo with its person painted out
as the empty scene (``segme.evaluate.video.empty_scene``), beside the model on the same
frames.

    python benchmarks/baseline_still.py --data ../shared/data/portraits/val --threads 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

from segme.data.folders import find_pairs, load_pair
from segme.data.motion import motion_clip
from segme.evaluate.temporal import TemporalAccumulator
from segme.evaluate.video import BASELINE, check_methods, empty_scene, run_clip
from segme.segmenter import Segmenter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="folder of images and masks")
    ap.add_argument("--model", type=Path, help="model file; default: the built-in model")
    ap.add_argument("--temporal", default="none,ema", help="the model's methods beside bgsub")
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    seg = Segmenter(args.model, threads=args.threads, upsample="bilinear")
    methods = check_methods(f"{args.temporal},{BASELINE}", seg.card)
    every = find_pairs(args.data)
    pairs = every[:: max(1, len(every) // args.clips)][: args.clips]  # as eval-video
    accs = {m: TemporalAccumulator() for m in methods}
    for index, pair in enumerate(pairs):
        image, mask = load_pair(pair)
        clip, truths = motion_clip(image, mask, frames=args.frames, seed=index,
                                   static=args.frames)
        empty = motion_clip(empty_scene(image, mask), mask, frames=1, seed=index)[0][0]
        for m, acc in accs.items():
            run_clip(seg, m, clip, acc, truths, empty)
    # identical frames: dtSSD and instability are 0 for every method, fg-IoU is what differs
    print(f"{len(pairs)} clips of {args.frames} frames, camera still\n")
    print("| method | fg-IoU |\n|---|---:|")
    for m, acc in accs.items():
        print(f"| {m} | {acc.results()['fg_iou']:.2f} |")


if __name__ == "__main__":
    main()
