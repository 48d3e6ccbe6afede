"""``segme export``: a checkpoint to a deployable file, with the card embedded and gates.

Every exported file checks itself: the max abs alpha difference against the torch model on
sample images, and, given ``--val``, the fg-IoU change against the float model. Above the
thresholds the file is removed and the command fails.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import typer

from segme.cli._extras import needs_extra
from segme.cli._options import SIZE_HELP, parse_size

# default parity thresholds (max abs alpha difference vs torch) per kind of file
MAX_DIFF = {None: 1e-4, "fp16-weights": 5e-2, "int8-weights": 0.5, "fp16": 2e-2, "int8": 0.5}  # INT8: the fg-IoU gate is the real one


def sample_inputs(card, folder: Path | None, n: int = 8):
    """Prepared model inputs from the images of ``folder`` (or synthetic portraits)."""
    import numpy as np

    from segme.data.synthetic import synthetic_pair
    from segme.io.images import read_image
    from segme.io.sources import expand_images
    from segme.preprocess import prepare

    if folder is None:
        rng = np.random.default_rng(0)
        images = [synthetic_pair(rng, 240, 180)[0] for _ in range(n)]
    else:
        files = expand_images(folder / "images" if (folder / "images").is_dir() else folder)
        step = max(1, len(files) // n)
        images = [read_image(f) for f in files[::step][:n]]
    return [prepare(img, card)[0] for img in images]


def card_metrics(path: Path) -> dict[str, float]:
    """The headline numbers of a ``segme eval --json`` file, flattened for a ModelCard."""
    import json

    try:
        results = json.loads(path.read_text())
        out = {f"{k}": round(float(results["all"][k]), 4)
               for k in ("fg_iou", "boundary_iou", "miou", "mad")}
        out.update({f"{src}_fg_iou": round(float(r["fg_iou"]), 4)
                    for src, r in results.items() if src != "all"})
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"--metrics {path} is not a `segme eval --json` file ({e})") from None
    return out


@needs_extra("export", "segme export")
def export(
    model: Path = typer.Option(..., help="Checkpoint (.pt) written by `segme train`, weights "
                               "(.safetensors, float .onnx) written by `segme export`, or a "
                               "built-in model's name (`segme models list`)."),
    output: Path = typer.Option(..., "-o", "--output",
                                help="Output: .onnx, .tflite, .xml (OpenVINO IR, .bin beside "
                                "it) or .safetensors (format by suffix)."),
    quantize: str = typer.Option(None, help="For .onnx: fp16-weights or int8-weights (a half "
                                 "or a quarter of the file, computed in float32 at its speed), "
                                 "fp16 (computed in float16) or int8; for .tflite: fp16 "
                                 "(float16 weights, half the file) or int8; for .xml: fp16 "
                                 "(float16 weights) or int8."),
    calibration: Path = typer.Option(None, help="Folder of photos for INT8 calibration."),
    size: str = typer.Option(None, help=f"{SIZE_HELP} (default: the size it trained at)."),
    val: Path = typer.Option(None, help="Folder with masks: also gate on the fg-IoU change."),
    max_diff: float = typer.Option(None, help="Max abs alpha difference vs torch (default "
                                   "1e-4 float, 5e-2 fp16-weights, 0.5 int8-weights, 2e-2 fp16, 0.5 int8)."),
    max_iou_drop: float = typer.Option(0.3, help="With --val: max fg-IoU loss in points."),
    metrics: Path = typer.Option(None, help="`segme eval --json` output to record in the card."),
    notes: str = typer.Option(None, help="Provenance text for the card (data, recipe)."),
) -> None:
    """Export a trained model to ONNX, TFLite or OpenVINO IR (optionally FP16 or INT8), or
    safetensors."""
    import numpy as np

    from segme.export.onnx import export_onnx
    from segme.export.quantize import stored_weights, to_fp16, to_int8
    from segme.export.rewrite import integer_friendly
    from segme.export.weights import save_weights
    from segme.models.loading import load_model
    from segme.runtime import load_backend

    suffix = output.suffix.lower()
    if suffix not in (".onnx", ".tflite", ".xml", ".safetensors"):
        raise ValueError(f"output must end in .onnx, .tflite, .xml or .safetensors, "
                         f"got {output.name}")
    if quantize not in (None, *MAX_DIFF):
        raise ValueError(f"--quantize must be one of {', '.join(k for k in MAX_DIFF if k)}, "
                         f"got {quantize!r}")
    if quantize and (suffix == ".safetensors"
                     or (suffix in (".tflite", ".xml") and quantize not in ("fp16", "int8"))):
        raise ValueError(f"--quantize {quantize} is not available for {suffix} outputs "
                         "(ONNX: fp16-weights, int8-weights, fp16 and int8; TFLite and "
                         "OpenVINO: fp16 and int8)")
    if quantize == "int8" and calibration is None:
        raise ValueError("--quantize int8 needs --calibration DIR (a few dozen photos)")
    for folder, what in ((calibration, "--calibration"), (val, "--val")):
        if folder is not None and not folder.is_dir():
            raise FileNotFoundError(f"{what} folder not found: {folder}")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"output folder not found: {output.parent}")
    net, card = load_model(model)
    if size:
        card = net.card(parse_size(size))
    if metrics is not None:
        card.metrics = card_metrics(metrics)
    if notes:
        card.notes = notes
    if suffix == ".safetensors":
        save_weights(net, card, output)
        print(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB)")
        return

    import torch

    limit = MAX_DIFF[quantize] if max_diff is None else max_diff
    calib = sample_inputs(card, calibration, n=64) if quantize == "int8" else None
    with tempfile.TemporaryDirectory() as tmp:
        # the float ONNX file: the output itself, the source of FP16 / INT8, or the
        # reference of the --val gate; a plain TFLite export without --val needs none
        fp32 = output if quantize is None and suffix == ".onnx" else Path(tmp) / "fp32.onnx"
        if suffix in (".onnx", ".xml") or val is not None:
            export_onnx(net, fp32, card)
        if quantize == "int8" and suffix in (".onnx", ".xml"):
            # the source of the INT8 file: hard-swish decomposed (segme.export.rewrite)
            source = Path(tmp) / "integer.onnx"
            with integer_friendly(net):
                export_onnx(net, source, card)
        if suffix == ".tflite":
            from segme.export.tflite import export_tflite, tflite_fp16, tflite_int8

            if quantize == "int8":
                source = export_tflite(net, Path(tmp) / "integer.tflite", card, integer=True)
                tflite_int8(source, output, card, calib)
            elif quantize == "fp16":
                tflite_fp16(export_tflite(net, Path(tmp) / "fp32.tflite", card), output)
            else:
                export_tflite(net, output, card)
        elif suffix == ".xml":
            from segme.export.openvino import save_ir

            if quantize == "int8":
                with contextlib.redirect_stdout(io.StringIO()):
                    to_int8(source, Path(tmp) / "int8.onnx", calib)
                save_ir(Path(tmp) / "int8.onnx", output, card)
            else:
                save_ir(fp32, output, card, fp16_weights=quantize == "fp16")
        elif quantize == "fp16":
            to_fp16(fp32, output)
        elif quantize in ("fp16-weights", "int8-weights"):
            stored_weights(fp32, output, quantize.partition("-")[0])
        elif quantize == "int8":
            with contextlib.redirect_stdout(io.StringIO()):  # the calibrator chats on stdout
                to_int8(source, output, calib)
        inputs = sample_inputs(card, val or calibration)
        backend = load_backend(output)
        with torch.no_grad():
            diff = max(float(np.abs(net(torch.from_numpy(x)).numpy() - backend.run(x)).max())
                       for x in inputs)
        kind = quantize or "float32"
        size = output.stat().st_size + (output.with_suffix(".bin").stat().st_size
                                        if suffix == ".xml" else 0)
        print(f"wrote {output} ({kind}, {size / 1e6:.2f} MB); max abs alpha "
              f"difference vs torch on {len(inputs)} images: {diff:.2e} (limit {limit:.0e})")
        failures = [f"parity {diff:.2e} > {limit:.0e}"] if diff > limit else []
        if val is not None:
            from segme.evaluate.run import evaluate

            ref = evaluate(fp32, val, progress=False)["all"]["fg_iou"]
            got = evaluate(backend, val, progress=False)["all"]["fg_iou"]
            print(f"fg-IoU on {val}: float32 {ref:.2f}, this file {got:.2f} "
                  f"(change {got - ref:+.2f}, limit -{max_iou_drop})")
            if ref - got > max_iou_drop:
                failures.append(f"fg-IoU drop {ref - got:.2f} > {max_iou_drop}")
    if failures:
        output.unlink(missing_ok=True)
        if suffix == ".xml":
            output.with_suffix(".bin").unlink(missing_ok=True)
        raise ValueError(f"export check failed: {'; '.join(failures)}; {output.name} removed")
