"""Options every photo verb takes (one definition, used by each verb's signature)."""

from __future__ import annotations

import os
import sys

import typer

SOURCES = typer.Argument(..., help="Images, folders of images, globs like 'shots/*.jpg', "
                         "http(s) addresses, '-' (an image on standard input), video files, "
                         "or a camera index such as 0.", show_default=False,
                         metavar="SOURCE")
OUT = typer.Option(None, "--out", "-o", help="Output folder (created; default: out), or with "
                   "one input the output file (its extension sets the format; '-': standard "
                   "output). Inputs are never overwritten. A camera with --virtual-camera "
                   "records only when -o is given.", show_default=False)
RECURSIVE = typer.Option(False, "--recursive", "-r", help="Folder sources: read their "
                         "subfolders too, mirrored under --out.")
MODEL_HELP = ("Model file (.onnx, .tflite, .xml, .pt, .safetensors) or a built-in model's "
              "name (`segme models list`); default: the built-in default.")
MODEL = typer.Option(None, help=MODEL_HELP)
# the verbs': a camera also takes the baseline
VERB_MODEL = typer.Option(None, help=MODEL_HELP + " A camera also takes bgsub: the seed "
                          "project's background subtraction instead of a model (step out of "
                          "view for its first 100 frames; docs/video.md).")
THREADS = typer.Option(None, help="Inference threads per job (default: cores / jobs).")
RUNTIME = typer.Option(None, help="Runtime: onnx, litert, openvino or torch (default: by the "
                       "model file's suffix; openvino also runs .onnx files).",
                       show_default=False)
JOBS = typer.Option(min(4, os.cpu_count() or 1), min=1, help="Images processed in parallel.")


def threads_for(threads: int | None, jobs: int) -> int:
    return threads or max(1, (os.cpu_count() or 1) // max(1, jobs))


def parse_size(text: str | None) -> int | tuple[int, int] | None:
    """``--size`` text: ``224`` (a square side) or ``256x192`` (height x width)."""
    if text is None:
        return None
    parts = text.lower().split("x")
    try:
        sides = [int(p) for p in parts]
    except ValueError:
        sides = []
    if len(sides) not in (1, 2) or min(sides) <= 0:
        raise ValueError(f"--size takes a side such as 224 or HEIGHTxWIDTH such as 256x192, "
                         f"got {text!r}")
    return sides[0] if len(sides) == 1 or sides[0] == sides[1] else (sides[0], sides[1])


SIZE_HELP = ("Input side (224) or HEIGHTxWIDTH (256x192: portrait photos at their own "
             "aspect)")
DURATION = typer.Option(None, help="Camera sources: stop after this many seconds (default: Ctrl-C).")
VIRTUAL_CAMERA = typer.Option(False, "--virtual-camera", help="Camera sources: send the picture "
                              "to a virtual camera for Zoom, Meet, Teams or OBS (needs "
                              "pyvirtualcam: pip install 'segme\\[camera]'; v4l2loopback on "
                              "Linux, OBS on Windows and macOS). Keys change the picture live.")
# the edge-snapping filter that guided upsampling now is: old commands keep working
REFINE = typer.Option(False, hidden=True, help="Deprecated: --upsample guided.")
TEMPORAL = typer.Option(None, help="Videos and cameras: none, ema, flow, ofd, prior (4-channel "
                        "models) or a chain such as ofd+ema; default: ema (docs/video.md).")
TTA = typer.Option(None, help="Test-time augmentation for images: 'flip' and/or input sizes, "
                   "e.g. flip,224,256,320 (sizes other than the model's need .pt/.safetensors "
                   "weights); slower, more accurate: a teacher's labels.")
UPSAMPLE = typer.Option(None, help="How the model's low-resolution alpha reaches the "
                        "image's size: guided (follows the image's edges where the model is "
                        "unsure: more accurate edges) or bilinear (the evaluation protocol's; "
                        "faster). Default: guided for images, bilinear for videos and cameras "
                        "(keeps 720p real time; measured in docs/video.md).")


def upsample_for(upsample: str | None, refine: bool) -> str | None:
    """``--upsample`` with the deprecated ``--refine`` folded in (it means guided)."""
    if not refine:
        return upsample
    if upsample not in (None, "guided"):
        raise ValueError(f"--refine is --upsample guided, which --upsample {upsample} "
                         "contradicts; give one of them")
    print("note: --refine is deprecated; it is --upsample guided (the default for images)",
          file=sys.stderr)
    return "guided"


EVAL_UPSAMPLE = typer.Option("bilinear", help="bilinear: the reference protocol of every "
                             "documented score, and what videos get by default; guided: what "
                             "photos get by default.")
