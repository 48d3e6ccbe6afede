"""ModelCard: everything a runtime must know to feed a model and read its output.

The card is the only place that knows input size, normalisation and colour order. It is
saved in checkpoints and written into exported files so that a file is self-describing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

Size = int | tuple[int, int]  # a square side, or (height, width)


def as_hw(size: Size) -> tuple[int, int]:
    """``size`` as (height, width); an int means a square."""
    if isinstance(size, int):
        return size, size
    return int(size[0]), int(size[1])


def nearest_sides(side: int, divisor: int) -> str:
    """The valid input sides around ``side`` for a model of this size divisor: "96 or 128",
    or the one side when only one fits (for error messages)."""
    if side > 0 and side % divisor == 0:
        return str(side)
    below, above = side // divisor * divisor, (max(side, 0) // divisor + 1) * divisor
    return f"{below} or {above}" if below > 0 else str(above)


CARD_KEY = "segme.card"  # metadata key of the card JSON in exported files (ONNX, safetensors)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ModelCard:
    """Description of a segmentation model's inputs and outputs.

    Attributes:
        arch: registry name of the architecture (``segme.models.list_models()``).
        arch_kwargs: constructor keyword arguments that rebuild the same network.
        input_size: model input as (height, width) in pixels.
        size_divisor: input height and width must be multiples of this.
        mean: per-channel mean subtracted from RGB scaled to [0, 1].
        std: per-channel standard deviation the centred RGB is divided by.
        color_order: channel order of the image planes fed to the model ("rgb").
        output: what the model returns: "alpha" = float32 [B, 1, H, W] in [0, 1].
        stateful_inputs: extra input planes carried between video frames, in order after
            the colour planes (e.g. ["prev_alpha"] for a 4-channel prior model).
        layout: axis order of the exported file's input and output tensors: "nchw"
            ([1, C, h, w], ONNX and torch) or "nhwc" ([1, h, w, C], TFLite's native order,
            which runs without layout transposes). ``prepare`` always gives NCHW; a
            runtime whose file is NHWC transposes at its boundary.
        metrics: measured validation numbers, filled in by evaluation (name -> value).
        notes: free text: training data, recipe, provenance.
    """

    arch: str
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    input_size: tuple[int, int] = (256, 256)
    size_divisor: int = 32
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    color_order: str = "rgb"
    output: str = "alpha"
    stateful_inputs: list[str] = field(default_factory=list)
    layout: str = "nchw"
    metrics: dict[str, float] = field(default_factory=dict)
    notes: str = ""

    def __post_init__(self) -> None:
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        if self.color_order not in ("rgb", "bgr"):
            raise ValueError(f"color_order must be 'rgb' or 'bgr', got {self.color_order!r}")
        if self.layout not in ("nchw", "nhwc"):
            raise ValueError(f"layout must be 'nchw' or 'nhwc', got {self.layout!r}")
        h, w = self.input_size
        if h % self.size_divisor or w % self.size_divisor:
            raise ValueError(
                f"input_size {self.input_size} is not a multiple of size_divisor "
                f"{self.size_divisor}; choose {nearest_sides(h, self.size_divisor)} (height) "
                f"x {nearest_sides(w, self.size_divisor)} (width)"
            )

    @property
    def in_channels(self) -> int:
        return 3 + len(self.stateful_inputs)

    def to_json(self) -> str:
        data = asdict(self)
        if data["layout"] == "nchw":  # the default: older files and their bytes unchanged
            del data["layout"]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"model card is not valid JSON: {e}") from None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)
