"""What deployment formats cost and win: ONNX FP32 / FP16 / INT8, TFLite FP32 / INT8.

For one checkpoint: export every format (INT8 calibrated on a folder of photos), score each
on a validation folder (fg-IoU and its change against FP32), and time, with 1 and 2
threads, the model call alone and the whole photo pipeline on a 1280x720 frame (prepare,
model, resize back, background blur). Then the end-to-end frames per second of
``segme replace`` on a 1280x720 video with an audio track (decode, infer, composite,
encode). Medians; all formats timed in turn in one run.

    python benchmarks/deploy.py runs/sinet/best.pt --val ../shared/data/portraits/val \\
        --calibration ../shared/data/portraits/train/images \
        --video-from ../shared/data/video/talking_katiehill_000.mp4

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
from segme.export.onnx import export_onnx
from segme.export.quantize import to_fp16, to_int8
from segme.export.tflite import export_tflite, tflite_int8
from segme.models.loading import load_model
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--val", type=Path, required=True)
    ap.add_argument("--calibration", type=Path, required=True)
    ap.add_argument("--video-from", type=Path, help="clip to upscale to 1280x720 for the fps")
    ap.add_argument("--runs", type=int, default=300)
    args = ap.parse_args()

    model, card = load_model(args.checkpoint)
    out = Path(tempfile.mkdtemp(prefix="segme-deploy-"))
    files = {"onnx fp32": out / "fp32.onnx", "onnx fp16": out / "fp16.onnx",
             "onnx int8": out / "int8.onnx", "tflite fp32": out / "fp32.tflite",
             "tflite int8": out / "int8.tflite"}
    export_onnx(model, files["onnx fp32"], card)
    to_fp16(files["onnx fp32"], files["onnx fp16"])
    calibration = sample_inputs(card, args.calibration, 64)
    with contextlib.redirect_stdout(io.StringIO()):
        to_int8(files["onnx fp32"], files["onnx int8"], calibration)
    export_tflite(model, files["tflite fp32"], card)
    tflite_int8(files["tflite fp32"], files["tflite int8"], card, calibration)

    iou = {k: evaluate(f, args.val, threads=2, progress=False)["all"]["fg_iou"]
           for k, f in files.items()}
    segs = {(k, t): Segmenter(f, threads=t) for k, f in files.items() for t in (1, 2)}
    model_ms = interleaved_medians({k: s.backend for k, s in segs.items()}, args.runs)
    frame, _ = synthetic_pair(np.random.default_rng(0), 720, 1280)
    pipe = {k: pipeline_ms(s, frame, max(10, args.runs // 10)) for k, s in segs.items()}

    print(f"\n{card.arch} {card.input_size[1]}x{card.input_size[0]}, fg-IoU on {args.val}, "
          "latency in ms (median)\n")
    print("| format | size | fg-IoU | change vs fp32 | model 1t | model 2t | 720p pipeline 1t "
          "| 720p pipeline 2t |")
    print("|---|---|---|---|---|---|---|---|")
    for k, f in files.items():
        print(f"| {k} | {f.stat().st_size / 1e6:.2f} MB | {iou[k]:.2f} | "
              f"{iou[k] - iou['onnx fp32']:+.2f} | {model_ms[(k, 1)]:.2f} | "
              f"{model_ms[(k, 2)]:.2f} | {pipe[(k, 1)]:.1f} | {pipe[(k, 2)]:.1f} |")

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
                                   str(args.video), "--bg", "#00b140", "--model", str(files[k]),
                                   "--out", str(out / "video")], capture_output=True, text=True)
            dt = time.perf_counter() - t0
            if proc.returncode:
                raise SystemExit(proc.stderr)
            print(f"\nsegme replace, {size[0]}x{size[1]}, {n} frames"
                  f"{' with audio' if has_audio else ''}, {k}: {dt:.1f} s end to end "
                  f"= {n / dt:.1f} fps (includes start-up)")


if __name__ == "__main__":
    main()
