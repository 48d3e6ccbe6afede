"""fg-IoU of one model at several alpha thresholds, per source: does 0.5 suit it?

The reference protocol cuts the alpha (resized back to the photo) at 0.5. A model whose
best cut lies elsewhere could have the shift baked into its last bias; this script tells
how much that would give. Everything else is the protocol of ``segme eval``
(``MetricAccumulator`` with another ``threshold``).

    python benchmarks/threshold.py src/segme/weights/mnv3-unet-portraits-224.onnx \
        --data ../shared/data/portraits/val
"""

from __future__ import annotations

import argparse
from pathlib import Path

from segme.data.folders import find_pairs, load_pair
from segme.evaluate.metrics import MetricAccumulator
from segme.runtime import load_backend
from segme.segmenter import TTA, predict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("model", type=Path, help=".onnx, .pt or .safetensors")
    ap.add_argument("--data", type=Path, required=True, help="folder of images and masks")
    ap.add_argument("--thresholds", type=float, nargs="+",
                    default=[0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    backend = load_backend(args.model, args.threads)
    tta = TTA.for_backend(None, backend)
    accs = [MetricAccumulator(threshold=t) for t in args.thresholds]
    for pair in find_pairs(args.data):
        image, mask = load_pair(pair)
        alpha = predict(backend, image, tta)
        for acc in accs:
            acc.update(alpha, mask, pair.name)
    results = [acc.result() for acc in accs]

    print("fg-IoU (boundary IoU) by threshold\n")
    print("| source | " + " | ".join(f"{t:g}" for t in args.thresholds) + " |")
    print("|---|" + "---|" * len(args.thresholds))
    for source in sorted(results[0]):
        cells = (f"{r[source]['fg_iou']:.2f} ({r[source]['boundary_iou']:.1f})" for r in results)
        print(f"| {source} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
