"""``segme models list`` and ``segme models info NAME``."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from segme.cards import as_hw, nearest_sides
from segme.cli._extras import install_hint, needs_extra
from segme.cli._options import SIZE_HELP, parse_size

app = typer.Typer(help="The model zoo: list architectures, show one's size and cost.",
                  no_args_is_help=True)


def profile(name: str, size: int | tuple[int, int] | None = None, **kwargs) -> dict:
    """Parameters and multiply-accumulates of a registered model at an input size: a
    square side or (height, width)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from segme.models import create_model

    model = create_model(name, **kwargs).eval()
    size = size or model.default_size
    h, w = as_hw(size)
    if h % model.size_divisor or w % model.size_divisor:
        d = model.size_divisor
        raise ValueError(f"--size {h}x{w} is not a multiple of {name}'s size divisor {d}; "
                         f"try {nearest_sides(h, d)} x {nearest_sides(w, d)}")
    x = torch.zeros(1, model.in_channels, h, w)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    doc = (type(model).__doc__ or "").strip().splitlines()
    return {
        "name": name,
        "params": sum(p.numel() for p in model.parameters()),
        "macs": counter.get_total_flops() / 2,  # the counter reports 2 FLOPs per MAC
        "size": h if h == w else f"{h}x{w}",  # a square's side, else "HxW"
        "default_size": model.default_size,
        "size_divisor": model.size_divisor,
        "in_channels": model.in_channels,
        "loss_recipe": model.loss_recipe,
        "summary": doc[0] if doc else "",
    }


@app.command("list")
def list_cmd(
    size: int = typer.Option(None, help="Input side for the MACs column (default: each model's own)."),
) -> None:
    """List the built-in weights, then the registered architectures with parameters and MACs
    at their input size (those need torch)."""
    console = Console(width=160)
    builtin(console)
    try:
        from segme.models import list_models
    except ModuleNotFoundError as e:
        console.print(install_hint(e, "train", "the table of architectures"), markup=False)
        return

    table = Table(title="segme models")
    for col in ("name", "params", "MMACs", "input", "divisor", "loss", "summary"):
        table.add_column(col, justify="right" if col in ("params", "MMACs", "input") else "left")
    for name in list_models():
        p = profile(name, size)
        table.add_row(name, f"{p['params']:,}", f"{p['macs'] / 1e6:.1f}", f"{p['size']}",
                      str(p["size_divisor"]), p["loss_recipe"], p["summary"])
    console.print(table)


def builtin(console) -> None:
    """The weights shipped in the package, with the numbers their cards record (read from
    the ONNX files: no torch)."""
    from segme.runtime import SUFFIXES, WEIGHTS, builtin_card
    from segme.segmenter import DEFAULT_MODEL

    table = Table(title="built-in weights (fg-IoU on 511 validation portraits: PFCN, PicsArt, CCP)")
    for col in ("name (--model NAME)", "arch", "input", "files", "fg-IoU", "boundary IoU",
                "pfcn", "picsart", "ccp", "default"):
        table.add_column(col)
    for path in sorted(WEIGHTS.glob("*.onnx")):
        card = builtin_card(path.stem)
        files = ", ".join(f"{f.suffix} {f.stat().st_size / 1e6:.1f} MB"
                          for f in sorted(WEIGHTS.glob(f"{path.stem}.*")) if f.suffix in SUFFIXES)
        cells = [f"{card.metrics[k]:.2f}" if k in card.metrics else "-"
                 for k in ("fg_iou", "boundary_iou", "pfcn_fg_iou", "picsart_fg_iou",
                           "ccp_fg_iou")]
        table.add_row(path.stem, card.arch, "x".join(map(str, card.input_size)), files,
                      *cells, "yes" if path == DEFAULT_MODEL else "")
    console.print(table)


@app.command("info")
@needs_extra("train", "segme models info")
def info_cmd(
    name: str = typer.Argument(..., help="Registered model name, or a built-in model's (its "
                               "architecture at its input size; see `segme models list`)."),
    size: str = typer.Option(None, help=f"{SIZE_HELP} (default: the model's own)."),
    width: float = typer.Option(None, help="Width multiplier, where the family has one."),
) -> None:
    """Parameters, MACs at an input size, default input size and loss of one model."""
    from segme.runtime import builtin_card

    kwargs = {"width": width} if width is not None else {}
    size = parse_size(size)
    card = builtin_card(name)
    if card is not None:
        name, kwargs, size = card.arch, {**card.arch_kwargs, **kwargs}, size or card.input_size
    p = profile(name, size, **kwargs)
    p["flops"] = 2 * p["macs"]
    for key, label in (("name", "model"), ("summary", "description"), ("params", "parameters"),
                       ("macs", "MACs"), ("flops", "FLOPs"), ("size", "profiled at"),
                       ("default_size", "default input"),
                       ("size_divisor", "size divisor"), ("in_channels", "input channels"),
                       ("loss_recipe", "loss recipe")):
        value = p[key]
        if key == "params":
            value = f"{value:,}"
        elif key in ("macs", "flops"):
            value = f"{value / 1e6:.1f} M"
        elif key in ("size", "default_size") and isinstance(value, int):
            value = f"{value}x{value}"
        print(f"{label:>15}: {value}")
