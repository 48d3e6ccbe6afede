"""``segme demo``: the built-in model on a photo that ships with scikit-image (no download)."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    out: Path = typer.Option(Path("out"), "--out", "-o", help="Output folder."),
    model: Path = typer.Option(None, help="Model file (.onnx/.tflite) or a built-in name; default: the built-in model."),
) -> None:
    """Cut out, replace and blur the background of scikit-image's astronaut photo."""
    try:
        from skimage import data
    except ImportError:
        raise ImportError("the demo photo comes with scikit-image: pip install 'segme[demo]'") from None

    from segme import effects
    from segme.io.images import write_image
    from segme.segmenter import Segmenter

    image = data.astronaut()  # uint8 [512, 512, 3] RGB, public domain (NASA)
    seg = Segmenter(model)
    alpha = seg(image)
    out.mkdir(parents=True, exist_ok=True)
    outputs = {name: effects.render(verb, image, alpha, strength=20) for name, verb in (
        ("astronaut-cutout.png", "cutout"), ("astronaut-replaced.jpg", "replace"),
        ("astronaut-blurred.jpg", "blur"), ("astronaut-mask.png", "mask"))}
    for name, array in outputs.items():
        write_image(out / name, array)
    print(f"model {seg.card.arch} ({seg.card.input_size[1]}x{seg.card.input_size[0]}); "
          f"person covers {100 * float((alpha >= 0.5).mean()):.1f}% of the photo")
    print("wrote " + ", ".join(str(out / n) for n in outputs))
