"""The table of docs/models.md: accuracy, size, cost and CPU latency of trained checkpoints.

For each checkpoint: export to ONNX next to it (parity-checked against torch), score the
ONNX file on a validation folder under the reference protocol (``segme eval``), count
parameters and MACs at the trained input size, and time the model call with ONNX Runtime
at 1 and 2 threads (median; all models interleaved in one run).

    python benchmarks/zoo.py runs/sinet/best.pt runs/mmnet/best.pt runs/mobile_unet/best.pt \
        --data ../shared/data/portraits/val --data ../shared/data/wild/val \
        --mediapipe cache/selfie_segmentation.tflite

``--data`` may be given several times: every model is scored on each folder and the table
has one block of rows per folder (the latency columns are the same in each).

``--mediapipe`` adds Google's MediaPipe selfie segmenter, run through LiteRT (XNNPACK) on
the same images and the same pre/post-processing, timed in the same interleaved run.
The last column marks the Pareto front of fg-IoU against 1-thread latency (each model on
its fastest runtime). Its
file ships inside the ``mediapipe==0.10.14`` wheel (needs ``pip install ai-edge-litert``):

    pip download --no-deps mediapipe==0.10.14 -d cache
    unzip -j cache/mediapipe-0.10.14-*.whl \
        mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite -d cache
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from segme.cards import ModelCard
from segme.cli.models import profile
from segme.evaluate.run import evaluate
from segme.evaluate.speed import interleaved_medians
from segme.export.onnx import export_onnx, parity
from segme.export.tflite import export_tflite
from segme.io.files import write_csv_atomic
from segme.models.loading import load_model
from segme.runtime.litert import LiteRTBackend
from segme.runtime.onnx import OnnxBackend

# ../shared/data/README.md, measured by whoever wrote it on the same val set and protocol
REFERENCE = [
    ("MediaPipe selfie (general, 256x256)", 95.86, 96.22, 95.80, 92.43, 82.0),
    ("MediaPipe selfie (landscape, 144x256)", 95.40, 95.86, 94.68, 91.88, 80.8),
]


def mediapipe_backend(path: Path, threads: int) -> LiteRTBackend:
    """MediaPipe's selfie segmenter: RGB / 255 in, NHWC [1, 256, 256, 3], person prob out."""
    card = ModelCard(arch="mediapipe_selfie", input_size=(256, 256), mean=(0, 0, 0),
                     std=(1, 1, 1))
    return LiteRTBackend(path, threads, card)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--data", type=Path, action="append", required=True,
                    help="validation folder (repeat for several)")
    ap.add_argument("--runs", type=int, default=400, help="timed calls per model and threads")
    ap.add_argument("--json", type=Path, help="also write all numbers here")
    ap.add_argument("--mediapipe", type=Path, help="MediaPipe selfie_segmentation.tflite")
    ap.add_argument("--limit", type=int,
                    help="score only N pairs, spread over the sources (quick checks)")
    ap.add_argument("--per-image", type=Path,
                    help="also write each image's fg-IoU under every model to this CSV and "
                    "count, per source, the photos where a model is 5 points below or above "
                    "MediaPipe")
    ap.add_argument("--tflite", action="store_true",
                    help="also export each model to .tflite and time it with LiteRT")
    args = ap.parse_args()

    rows = []
    per_image: dict[tuple[str, str], list[dict]] = {}  # (model, folder) -> per-image metrics
    for ckpt in args.checkpoints:
        model, card = load_model(ckpt)
        onnx_path = ckpt.with_suffix(".onnx")
        export_onnx(model, onnx_path, card)
        h, w = card.input_size
        x = np.random.default_rng(0).standard_normal((2, card.in_channels, h, w), np.float32)
        diff = parity(model, onnx_path, x)
        prof = profile(card.arch, (h, w), **card.arch_kwargs)
        res = {}
        for data in args.data:
            res[str(data)] = evaluate(onnx_path, data, threads=2, limit=args.limit, progress=False,
                                      per_image=per_image.setdefault((str(ckpt), str(data)), []))
        rows.append({"checkpoint": str(ckpt), "file": str(onnx_path), "arch": card.arch,
                     "kwargs": card.arch_kwargs, "size": prof["size"], "params": prof["params"],
                     "macs": prof["macs"], "parity": diff, "results": res, "runtime": "onnx"})
        print(f"scored {ckpt}: fg-IoU " + ", ".join(
            f"{r['all']['fg_iou']:.2f} on {d}" for d, r in res.items()), flush=True)
        if args.tflite:
            tfl = export_tflite(model, ckpt.with_suffix(".tflite"), card)
            rows.append({**rows[-1], "file": str(tfl), "runtime": "litert",
                         "parity": float(np.abs(LiteRTBackend(tfl).run(x) - model(
                             torch.from_numpy(x)).detach().numpy()).max())})
    if args.mediapipe:
        res = {}
        for data in args.data:
            res[str(data)] = evaluate(mediapipe_backend(args.mediapipe, 2), data,
                                      limit=args.limit, progress=False,
                                      per_image=per_image.setdefault(("MediaPipe", str(data)), []))
        rows.append({"checkpoint": None, "file": str(args.mediapipe), "size": 256,
                     "arch": "MediaPipe selfie (general)", "kwargs": {}, "params": None,
                     "macs": None, "parity": None, "results": res, "runtime": "litert",
                     "reference": True})
        print("scored MediaPipe: fg-IoU " + ", ".join(
            f"{r['all']['fg_iou']:.2f} on {d}" for d, r in res.items()), flush=True)

    backends = {}
    for r in rows:
        for t in (1, 2):
            if r["runtime"] == "onnx":
                backends[(r["file"], t)] = OnnxBackend(r["file"], threads=t)
            elif r.get("reference"):
                backends[(r["file"], t)] = mediapipe_backend(Path(r["file"]), t)
            else:
                backends[(r["file"], t)] = LiteRTBackend(r["file"], threads=t)
    med = interleaved_medians(backends, args.runs)
    ref = next((r for r in rows if r.get("reference")), None)
    for r in rows:
        r["ms_1t"], r["ms_2t"] = med[(r["file"], 1)], med[(r["file"], 2)]
        if ref is not None:
            r["ratio_1t"] = r["ms_1t"] / med[(ref["file"], 1)]
            r["ratio_2t"] = r["ms_2t"] / med[(ref["file"], 2)]

    # Pareto front of fg-IoU (on the first folder) against 1-thread latency, each model on
    # its fastest runtime: a model is on it when no other is both at least as accurate and
    # faster
    first = str(args.data[0])
    fastest = {}
    for r in rows:
        key = r["file"] if r.get("reference") else r["checkpoint"]
        if key not in fastest or r["ms_1t"] < fastest[key]["ms_1t"]:
            fastest[key] = r
    for r in rows:
        fg = r["results"][first]["all"]["fg_iou"]
        r["pareto"] = r in fastest.values() and not any(
            o is not r and o["results"][first]["all"]["fg_iou"] >= fg
            and o["ms_1t"] < r["ms_1t"] for o in fastest.values())

    for data in map(str, args.data):
        sources = sorted({s for r in rows for s in r["results"][data] if s != "all"})
        print(f"\n{data}\n\n| model | runtime | input | params | MMACs | fg-IoU all | "
              + " | ".join(sources) + " | boundary IoU | mIoU | MAD | ms 1 thread | ms 2 threads "
              "| ratio to MediaPipe 1t / 2t | max diff vs torch | Pareto |")
        print("|---|---|---|---|---|---|" + "---|" * len(sources) + "---|---|---|---|---|---|---|---|")
        for r in rows:
            a = r["results"][data]
            src = [f"{a[s]['fg_iou']:.2f}" if s in a else "-" for s in sources]
            name = r["arch"] + "".join(f" {k}={v}" for k, v in r["kwargs"].items())
            if r["checkpoint"]:
                name += f" ({r['checkpoint']})"
            macs = f"{r['macs'] / 1e6:.0f}" if r["macs"] else "-"
            ratio = f"{r['ratio_1t']:.2f} / {r['ratio_2t']:.2f}" if "ratio_1t" in r else "-"
            diff = "-" if r["parity"] is None else f"{r['parity']:.1e}"
            params = f"{r['params'] / 1e3:.0f} K" if r["params"] else "-"
            print(f"| {name} | {r['runtime']} | {r['size']} | {params} | {macs} | "
                  f"{a['all']['fg_iou']:.2f} | {' | '.join(src)} | "
                  f"{a['all']['boundary_iou']:.1f} | {a['all']['miou']:.2f} | "
                  f"{a['all']['mad']:.4f} | {r['ms_1t']:.2f} | {r['ms_2t']:.2f} | {ratio} | "
                  f"{diff} | {'yes' if r['pareto'] else ''} |")
        if sources == ["ccp", "pfcn", "picsart"]:  # the portrait set: the data README's rows
            for name, fg, pf, pa, cc, b in REFERENCE:
                print(f"| {name} (data README) | - | - | - | - | {fg:.2f} | {cc:.2f} | "
                      f"{pf:.2f} | {pa:.2f} | {b:.1f} | - | - | - | - | - | - | |")
    if args.per_image:
        write_per_image(args.per_image, per_image)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


def write_per_image(path: Path, per_image: dict[tuple[str, str], list[dict]],
                    margin: float = 5.0) -> None:
    """One CSV row per model, folder and image (its fg-IoU), then print, per model and
    source, how many photos it scores ``margin`` points below / above MediaPipe on the same
    folder: whether a gap is a few bad photos or a little everywhere."""
    write_csv_atomic(path, [{"model": m, "set": d, "name": r["name"], "source": r["source"],
                             "fg_iou": r["fg_iou"]} for (m, d), rs in per_image.items() for r in rs])
    if not any(m == "MediaPipe" for m, _ in per_image):
        return
    print(f"\n| model | set | source | photos | >= {margin:g} points below MediaPipe "
          f"| >= {margin:g} points above | median difference |")
    print("|---|---|---|---|---|---|---|")
    for (m, d), rows in per_image.items():
        if m == "MediaPipe":
            continue
        ref = per_image[("MediaPipe", d)]
        src = np.array([r["source"] for r in rows])
        diff = np.array([a["fg_iou"] - b["fg_iou"] for a, b in zip(rows, ref, strict=True)])
        for s in sorted(set(src)):
            e = diff[src == s]
            print(f"| {m} | {d} | {s} | {len(e)} | {(e <= -margin).sum()} | {(e >= margin).sum()} "
                  f"| {np.median(e):+.2f} |")


if __name__ == "__main__":
    main()
