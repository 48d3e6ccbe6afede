"""How models hold up on photos unlike the validation set's: a proxy for held-out data.

The validation photos are portrait-shaped with one person filling most of the frame.
Users also send landscape frames, several people, phones held sideways, dark, blurred or
heavily compressed pictures, and pictures with nobody in them. This script makes each of
those from ``portraits/val`` (the same change applied to image and mask, so the truth stays
exact, and seeded by the photo's index, so every model sees the same pictures) and scores
every model under the reference protocol on each, MediaPipe's selfie segmenter beside them
with ``--mediapipe``. A model that loses more than MediaPipe on a condition has learned
something about the validation photos that does not carry over.

    python benchmarks/robustness.py src/segme/weights/mnv3-unet-portraits-224.onnx \
        --data ../shared/data/portraits/val --mediapipe cache/selfie_segmentation.tflite

Conditions (``--conditions``, all by default):

- ``original``: the photo as it is (the reference for the drops).
- ``landscape``: padded left and right to 16:9 by mirroring its own borders (a webcam's
  frame; where the person touches a side, the mirror adds a second, partial person).
- ``small``: shrunk to half its width and height and framed by the mirrored borders (a
  person further from the camera).
- ``pair``: side by side with the next photo of the set at the same height (two people).
- ``rot90``: turned a quarter clockwise (a phone held sideways).
- ``dark``: exposure divided by three, then sensor noise (a dim room).
- ``blur``: Gaussian blur of 0.4% of the diagonal (out of focus or moving).
- ``jpeg``: JPEG quality 15.
- ``gray``: no colour.
- ``empty``: the part of each photo with nobody in it (the widest band of columns, else of
  rows, free of the person and at least a fifth of the photo across; photos without one
  are left out), scored as the share of its pixels called person (``false person %``,
  lower is better).

``segme train --scenes`` makes collages of training photos side by side, the mechanism of
``pair``; ``landscape`` and ``small`` mirror the photo's borders, which no training
augmentation does, and ``empty`` uses validation photos, never seen in training.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from zoo import mediapipe_backend

from segme.data.augment import free_runs
from segme.data.folders import find_pairs, load_pair
from segme.evaluate.metrics import MetricAccumulator
from segme.evaluate.run import spread
from segme.runtime import load_backend
from segme.segmenter import predict

Condition = Callable[[np.ndarray, np.ndarray, int, list], tuple[np.ndarray, np.ndarray]]


def _mirror_pad(image: np.ndarray, mask: np.ndarray, top: int, bottom: int, left: int,
                right: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad both by reflecting their borders (``BORDER_REFLECT_101``), so the truth stays exact."""
    def pad(a: np.ndarray) -> np.ndarray:
        return cv2.copyMakeBorder(a, top, bottom, left, right, cv2.BORDER_REFLECT_101)
    return pad(image), pad(mask)


def landscape(image, mask, i, pairs):
    h, w = mask.shape
    extra = max(0, round(h * 16 / 9) - w)
    return _mirror_pad(image, mask, 0, 0, extra // 2, extra - extra // 2)


def small(image, mask, i, pairs):
    h, w = mask.shape
    sh, sw = h // 2, w // 2
    image = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    mask = cv2.resize(mask, (sw, sh), interpolation=cv2.INTER_AREA)
    return _mirror_pad(image, mask, (h - sh) // 2, h - sh - (h - sh) // 2,
                       (w - sw) // 2, w - sw - (w - sw) // 2)


def pair(image, mask, i, pairs):
    other, other_mask = load_pair(pairs[(i + 1) % len(pairs)])
    h = mask.shape[0]
    ow = max(1, round(other.shape[1] * h / other.shape[0]))
    interp = cv2.INTER_AREA if other.shape[0] > h else cv2.INTER_LINEAR
    other = cv2.resize(other, (ow, h), interpolation=interp)
    other_mask = cv2.resize(other_mask, (ow, h), interpolation=cv2.INTER_LINEAR)
    return np.concatenate([image, other], 1), np.concatenate([mask, other_mask], 1)


def rot90(image, mask, i, pairs):
    return (np.ascontiguousarray(np.rot90(image, -1)), np.ascontiguousarray(np.rot90(mask, -1)))


def dark(image, mask, i, pairs):
    rng = np.random.default_rng(i)
    x = image.astype(np.float32) / 3.0 + rng.normal(0.0, 4.0, image.shape)
    return np.clip(x + 0.5, 0, 255).astype(np.uint8), mask


def blur(image, mask, i, pairs):
    sigma = 0.004 * float(np.hypot(*mask.shape))
    return cv2.GaussianBlur(image, (0, 0), sigma), mask


def jpeg(image, mask, i, pairs):
    ok, buf = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 15])
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]), mask


def gray(image, mask, i, pairs):
    g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return np.repeat(g[:, :, None], 3, 2), mask


CONDITIONS: dict[str, Condition] = {
    "original": lambda image, mask, i, pairs: (image, mask),
    "landscape": landscape, "small": small, "pair": pair, "rot90": rot90, "dark": dark,
    "blur": blur, "jpeg": jpeg, "gray": gray,
}


def empty_images(pairs) -> list[np.ndarray]:
    """The parts of the photos with nobody in them: the widest band of whole columns (or,
    failing that, rows) free of the person, at least a fifth of the photo across."""
    out = []
    for p in pairs:
        image, mask = load_pair(p)
        h, w = mask.shape
        cols = free_runs(mask.max(0) < 0.02, w // 5)
        rows = free_runs(mask.max(1) < 0.02, h // 5)
        if cols:
            a, b = max(cols, key=lambda r: r[1] - r[0])
            out.append(image[:, a:b])
        elif rows:
            a, b = max(rows, key=lambda r: r[1] - r[0])
            out.append(image[a:b])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("models", nargs="*", type=Path,
                    help="model files (.onnx, .tflite, .safetensors, .pt) or built-in names")
    ap.add_argument("--data", type=Path, required=True, help="validation folder")
    ap.add_argument("--mediapipe", type=Path, help="MediaPipe selfie_segmentation.tflite")
    ap.add_argument("--conditions", default=",".join([*CONDITIONS, "empty"]),
                    help="comma-separated, from: " + ", ".join([*CONDITIONS, "empty"]))
    ap.add_argument("--limit", type=int, help="only N pairs, spread over the sources (quick checks)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write all numbers here")
    args = ap.parse_args()

    names = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONDITIONS and c != "empty"]
    if unknown:
        ap.error(f"unknown condition(s) {', '.join(unknown)}")
    backends = {str(m): load_backend(m, args.threads) for m in args.models}
    if args.mediapipe:
        backends["MediaPipe"] = mediapipe_backend(args.mediapipe, args.threads)
    if not backends:
        ap.error("give at least one model or --mediapipe")
    pairs = spread(find_pairs(args.data), args.limit)

    results: dict[str, dict[str, dict]] = {m: {} for m in backends}
    for cond in names:
        if cond == "empty":
            images = empty_images(pairs)
            for m, b in backends.items():
                share = [float((predict(b, im) >= 0.5).mean()) for im in images]
                results[m]["empty"] = {"false_person": 100 * float(np.mean(share)),
                                       "photos": len(images)}
            continue
        accs = {m: MetricAccumulator() for m in backends}
        for i, p in enumerate(pairs):
            image, mask = CONDITIONS[cond](*load_pair(p), i, pairs)
            for m, b in backends.items():
                accs[m].update(predict(b, image), mask, p.name)
        for m in backends:
            results[m][cond] = accs[m].result()
        print(f"{cond}: " + ", ".join(f"{m} {accs[m].result()['all']['fg_iou']:.2f}"
                                      for m in backends), flush=True)

    print()
    header = [c for c in names if c != "empty"]
    print("| model | " + " | ".join(header) + (" | empty: false person %" if "empty" in names
                                               else "") + " |")
    print("|---|" + "---|" * (len(names)))
    for m, res in results.items():
        cells = []
        for c in header:
            fg = res[c]["all"]["fg_iou"]
            drop = fg - res["original"]["all"]["fg_iou"] if "original" in res and c != "original"\
                else None
            cells.append(f"{fg:.2f}" + ("" if drop is None else f" ({drop:+.2f})"))
        if "empty" in res:
            cells.append(f"{res['empty']['false_person']:.2f}")
        print(f"| {m} | " + " | ".join(cells) + " |")
    print("\nfg-IoU on each condition (its change from `original` in brackets); boundary IoU "
          "in the JSON.")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
