"""What deployment formats cost and win: ONNX Runtime, LiteRT and OpenVINO, FP32 / FP16 /
INT8.

For one checkpoint: export every format as `segme export` does (INT8 calibrated on a folder
of photos), score each on one or more validation folders (fg-IoU and its change against
FP32), and time the model call alone with 1 and 2 threads, all files in turn (medians), then
the 720p photo pipeline. Prints the table of docs/deploy.md, the INT8/FP32 call ratios per
runtime and the op counts of every file (the stored graph; for ONNX also the graph ONNX
Runtime runs after its fusions).

    python benchmarks/deploy.py runs/deploy41/default.safetensors \
        --val ../shared/data/portraits/val --val ../shared/data/wild/val \
        --calibration ../shared/data/portraits/train/images

``--video-from`` turns a clip into a 1280x720 one (the frame scaled to 720 px high, centred
on a blurred, stretched copy of itself), audio copied, for the end-to-end fps.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from segme import effects
from segme.cli.export import sample_inputs
from segme.data.synthetic import synthetic_pair
from segme.evaluate.run import evaluate
from segme.evaluate.speed import interleaved_medians
from segme.export.graph import format_counts, op_counts, ort_kernel_ms
from segme.export.onnx import export_onnx
from segme.export.openvino import save_ir
from segme.export.quantize import to_fp16, to_int8
from segme.export.rewrite import integer_friendly
from segme.export.tflite import export_tflite, tflite_fp16, tflite_int8
from segme.models.loading import load_model
from segme.runtime.openvino import OpenVINOBackend
from segme.segmenter import Segmenter


def pipeline_ms(seg: Segmenter, frame: np.ndarray, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        effects.blur_background(frame, seg(frame))
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def make_720p(src: Path, dst: Path) -> Path:
    import cv2

    from segme.io.video import VideoReader, write_video

    def frames(reader):
        for f in reader:
            canvas = cv2.GaussianBlur(cv2.resize(f, (1280, 720)), (0, 0), 25)
            w = round(f.shape[1] * 720 / f.shape[0])
            x0 = (1280 - w) // 2
            canvas[:, x0 : x0 + w] = cv2.resize(f, (w, 720), interpolation=cv2.INTER_CUBIC)
            yield canvas

    with VideoReader(src) as reader:
        write_video(frames(reader), dst, reader.fps, audio_from=src if reader.has_audio else None)
    return dst


def export_all(model, card, out: Path, calibration: list) -> dict[str, tuple[Path, str]]:
    """Every format, as `segme export` writes it: label -> (file, runtime)."""
    files = {"onnx fp32": (out / "fp32.onnx", "onnx"), "onnx fp16": (out / "fp16.onnx", "onnx"),
             "onnx int8": (out / "int8.onnx", "onnx"),
             "tflite fp32": (out / "fp32.tflite", "litert"),
             "tflite fp16": (out / "fp16.tflite", "litert"),
             "tflite int8": (out / "int8.tflite", "litert"),
             "openvino fp32": (out / "fp32.xml", "openvino"),
             "openvino fp16": (out / "fp16.xml", "openvino"),
             "openvino int8": (out / "int8.xml", "openvino")}
    export_onnx(model, out / "fp32.onnx", card)
    to_fp16(out / "fp32.onnx", out / "fp16.onnx")
    with integer_friendly(model):
        export_onnx(model, out / "integer.onnx", card)
    with contextlib.redirect_stdout(io.StringIO()):
        to_int8(out / "integer.onnx", out / "int8.onnx", calibration)
    export_tflite(model, out / "fp32.tflite", card)
    tflite_fp16(out / "fp32.tflite", out / "fp16.tflite")
    export_tflite(model, out / "integer.tflite", card, integer=True)
    tflite_int8(out / "integer.tflite", out / "int8.tflite", card, calibration)
    save_ir(out / "fp32.onnx", out / "fp32.xml", card)
    save_ir(out / "fp32.onnx", out / "fp16.xml", card, fp16_weights=True)
    save_ir(out / "int8.onnx", out / "int8.xml", card)
    return files


def size_mb(path: Path) -> float:
    extra = path.with_suffix(".bin").stat().st_size if path.suffix == ".xml" else 0
    return (path.stat().st_size + extra) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--val", type=Path, action="append", required=True,
                    help="validation folder (repeat for several)")
    ap.add_argument("--calibration", type=Path, required=True)
    ap.add_argument("--video-from", type=Path, help="clip to upscale to 1280x720 for the fps")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=8, help="interleaved rounds of timing")
    ap.add_argument("--no-pipeline", action="store_true", help="skip the 720p pipeline")
    args = ap.parse_args()

    model, card = load_model(args.checkpoint)
    out = Path(tempfile.mkdtemp(prefix="segme-deploy-"))
    calibration = sample_inputs(card, args.calibration, 64)
    files = export_all(model, card, out, calibration)
    # OpenVINO computing in float16 / bfloat16 where the CPU has it (f16 needs AVX-512 FP16)
    extra = {f"openvino fp32 ({p} compute)": p for p in ("f16", "bf16")}

    def backend(key, threads):
        if key in extra:
            return OpenVINOBackend(files["openvino fp32"][0], threads, precision=extra[key])
        path, runtime = files[key]
        return Segmenter(path, threads=threads, runtime=runtime).backend

    keys = [*files, *extra]
    iou = {(k, v): evaluate(backend(k, 2), v, threads=2, progress=False)["all"]["fg_iou"]
           for k in keys for v in args.val}
    backends = {(k, t): backend(k, t) for k in keys for t in (1, 2)}
    model_ms = interleaved_medians(backends, args.runs, rounds=args.rounds)
    pipe = {}
    if not args.no_pipeline:
        frame, _ = synthetic_pair(np.random.default_rng(0), 720, 1280)
        for (k, t), b in backends.items():
            seg = Segmenter(files[k][0] if k in files else files["openvino fp32"][0], threads=t,
                            runtime=files[k][1] if k in files else "openvino")
            seg.backend = b
            pipe[(k, t)] = pipeline_ms(seg, frame, max(10, args.runs // 10))

    vals = " / ".join(str(v) for v in args.val)
    print(f"\n{card.arch} {card.input_size[1]}x{card.input_size[0]}, fg-IoU on {vals}, "
          "latency in ms (median)\n")
    head = " | ".join(f"fg-IoU {v.parent.name}/{v.name}" for v in args.val)
    print(f"| format | size | {head} | model 1t | model 2t"
          + (" | 720p pipeline 1t | 720p pipeline 2t |" if pipe else " |"))
    print("|---|---|" + "---|" * (len(args.val) + 2 + (2 if pipe else 0)))
    for k in keys:
        path = files[k][0] if k in files else files["openvino fp32"][0]
        scores = " | ".join(f"{iou[(k, v)]:.2f} ({iou[(k, v)] - iou[('onnx fp32', v)]:+.2f})"
                            for v in args.val)
        row = (f"| {k} | {size_mb(path):.2f} MB | {scores} | {model_ms[(k, 1)]:.2f} | "
               f"{model_ms[(k, 2)]:.2f} |")
        if pipe:
            row += f" {pipe[(k, 1)]:.1f} | {pipe[(k, 2)]:.1f} |"
        print(row)
    print("\nINT8 call / FP32 call, same runtime, same run:")
    for rt in ("onnx", "tflite", "openvino"):
        print(f"  {rt}: " + ", ".join(
            f"{t} thread{'s' * (t > 1)} {model_ms[(f'{rt} int8', t)] / model_ms[(f'{rt} fp32', t)]:.2f}"
            for t in (1, 2)))
    print("\nOp counts (stored graphs; 'ort' = the graph ONNX Runtime runs):\n")
    counts = {k: op_counts(files[k][0]) for k in ("tflite fp32", "tflite int8")}
    counts.update({f"{k} ort": op_counts(files[k][0], optimized=True)
                   for k in ("onnx fp32", "onnx int8")})
    print(format_counts(counts))
    print("\nONNX Runtime kernel time by op type, 1 thread, ms per call:\n")
    kernel = {k: ort_kernel_ms(files[k][0]) for k in ("onnx fp32", "onnx int8")}
    ops = sorted({op for c in kernel.values() for op in c},
                 key=lambda op: -max(c.get(op, 0.0) for c in kernel.values()))
    print("| op | onnx fp32 | onnx int8 |\n|---|---|---|")
    for op in ops:
        print(f"| {op} | " + " | ".join(f"{c.get(op, 0.0):.3f}" for c in kernel.values()) + " |")
    print("| **total** | " + " | ".join(f"{sum(c.values()):.3f}" for c in kernel.values()) + " |")

    if args.video_from:
        import av

        args.video = make_720p(args.video_from, out / "clip720.mp4")
        with av.open(str(args.video)) as c:
            n = c.streams.video[0].frames
            size = (c.streams.video[0].width, c.streams.video[0].height)
            has_audio = bool(c.streams.audio)
        for k in ("onnx fp32", "tflite fp32"):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "segme.cli.main", "replace",
                                   str(args.video), "--bg", "#00b140", "--model", str(files[k][0]),
                                   "--out", str(out / "video")], capture_output=True, text=True)
            dt = time.perf_counter() - t0
            if proc.returncode:
                raise SystemExit(proc.stderr)
            print(f"\nsegme replace, {size[0]}x{size[1]}, {n} frames"
                  f"{' with audio' if has_audio else ''}, {k}: {dt:.1f} s end to end "
                  f"= {n / dt:.1f} fps (includes start-up)")


if __name__ == "__main__":
    main()
