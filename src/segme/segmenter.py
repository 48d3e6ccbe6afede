"""Segmenter: an image in, the person's alpha out. No torch on this path.

    from segme import Segmenter
    seg = Segmenter.from_file("model.onnx", threads=2)
    alpha = seg("photo.jpg")  # float32 [H, W] in [0, 1] at the photo's size
    alpha = Segmenter(channels="bgr")(cv2.imread("photo.jpg"))  # OpenCV's arrays are BGR
    for alpha in seg.stream(frames, temporal="ofd+ema"):  # video: one alpha per frame
        ...
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from segme.cards import ModelCard, nearest_sides
from segme.io.images import as_rgb
from segme.postprocess import DEFAULT_UPSAMPLE, DEFAULT_VIDEO_UPSAMPLE, check_upsample, restore
from segme.preprocess import check_channels, prepare, to_rgb
from segme.runtime import WEIGHTS, load_backend
from segme.temporal import CUT_THRESHOLD, Stream, stream_pairs

DEFAULT_MODEL = WEIGHTS / "mnv3-unet-portraits-224.onnx"  # the built-in model: weights/README.md


@dataclass(frozen=True)
class TTA:
    """Test-time augmentation: the mean alpha over input sizes and, with ``flip``, their
    mirror images. Slower by the number of passes; more accurate (a teacher's labels).

    Attributes:
        sizes: square input sides to run at; empty = the model's own input size only.
        flip: also run every size on the horizontally mirrored image.
    """

    sizes: tuple[int, ...] = ()
    flip: bool = False

    @classmethod
    def parse(cls, spec: str | None) -> TTA | None:
        """``"flip"``, ``"224,288"`` or ``"flip,224,256,320"`` -> TTA; None/"" -> None."""
        if not spec:
            return None
        sizes, flip = [], False
        for item in (s.strip().lower() for s in spec.split(",")):
            if item == "flip":
                flip = True
            elif item.isdigit() and int(item) > 0:
                sizes.append(int(item))
            else:
                raise ValueError(f"--tta takes 'flip' and input sizes separated by commas "
                                 f"(e.g. flip,224,288), got {item!r}")
        return cls(tuple(sizes), flip)

    @classmethod
    def for_backend(cls, tta: TTA | str | None, backend) -> TTA | None:
        """``tta`` (a TTA, its text or None) checked against an opened backend: sizes other
        than the model's need a backend that takes any size (``dynamic_size``)."""
        tta = cls.parse(tta) if isinstance(tta, str) or tta is None else tta
        if tta is not None:
            if backend.card.stateful_inputs:
                raise ValueError("--tta does not apply to models with a previous-frame input")
            tta.cards(backend.card, getattr(backend, "dynamic_size", False))
        return tta

    def cards(self, card: ModelCard, dynamic: bool) -> list[ModelCard]:
        """The card of each pass; checks that the sizes suit the model and its runtime."""
        if not self.sizes:
            return [card]
        out = []
        for s in self.sizes:
            if (s, s) == card.input_size:
                out.append(card)
                continue
            if not dynamic:
                raise ValueError(
                    f"this model file only takes {card.input_size[0]}x{card.input_size[1]} "
                    f"input; multi-size --tta needs the .pt or .safetensors weights")
            if s % card.size_divisor:
                raise ValueError(f"--tta size {s} is not a multiple of the model's size "
                                 f"divisor {card.size_divisor}; try "
                                 f"{nearest_sides(s, card.size_divisor)}")
            out.append(replace(card, input_size=(s, s)))
        return out


def predict(backend, image: np.ndarray, tta: TTA | None = None,
            upsample: str = "bilinear") -> np.ndarray:
    """One image through a backend: uint8 [H, W, 3] RGB -> alpha float32 [H, W] in [0, 1].

    With ``tta``, the mean of the restored alphas of every pass. ``upsample``: ``bilinear``
    or ``guided`` (``segme.postprocess``)."""
    guide = image if check_upsample(upsample) == "guided" else None
    if tta is None:
        x, meta = prepare(image, backend.card)
        return restore(backend.run(x), meta, guide)
    total, passes = 0.0, 0  # a running sum: one full-size alpha in memory, not one per pass
    for card in tta.cards(backend.card, getattr(backend, "dynamic_size", False)):
        x, meta = prepare(image, card)
        total = total + restore(backend.run(x), meta, guide)
        passes += 1
        if tta.flip:
            mirrored = np.ascontiguousarray(x[..., ::-1])
            alpha = np.asarray(backend.run(mirrored), np.float32)
            total = total + restore(alpha[..., ::-1], meta, guide)  # unmirrored first
            passes += 1
    return np.clip(total / passes, 0.0, 1.0)


class Segmenter:
    """Runs an exported segme model on images of any size and aspect.

    Args:
        model: ``.onnx`` file written by ``segme export`` (its ModelCard says how to feed
            it), or a ``.pt`` / ``.safetensors`` file when PyTorch is installed; None: the
            built-in model.
        threads: inference threads (None: the runtime's default, all cores).
        tta: test-time augmentation for single images (``TTA`` or its text, e.g.
            ``"flip,224,256,320"``; sizes other than the model's need ``.pt`` /
            ``.safetensors`` weights). Videos and streams ignore it.
        upsample: how the model's alpha reaches the image's size: ``guided`` (edge-aware,
            the image as the guide) or ``bilinear`` (the evaluation protocol's), for images
            and streams alike; None: guided for images and bilinear for streams, which keeps
            720p video real time (``segme.postprocess``).
        channels: colour order of image arrays given to every method, ``rgb`` or ``bgr``
            (OpenCV's ``imread`` and ``VideoCapture``). Paths and PIL images are always read
            as RGB; only numpy arrays are swapped.
        runtime: ``onnx``, ``litert``, ``openvino`` or ``torch``; None: by the file's
            suffix (``.xml`` is OpenVINO's; ``.onnx`` runs on ONNX Runtime unless this
            says ``openvino``).

    Raises:
        ValueError: ``channels``, ``upsample`` or ``tta`` is not one of the names above.
    """

    def __init__(self, model: str | Path | None = None, threads: int | None = None,
                 tta: TTA | str | None = None, upsample: str | None = None,
                 channels: str = "rgb", runtime: str | None = None) -> None:
        self.channels = check_channels(channels)
        self.upsample = check_upsample(upsample or DEFAULT_UPSAMPLE)  # images
        self.stream_upsample = check_upsample(upsample or DEFAULT_VIDEO_UPSAMPLE)
        if model is None:
            model = DEFAULT_MODEL
            if not model.is_file():
                raise FileNotFoundError(
                    f"the built-in model {model.name} is missing from this installation; "
                    "pass a model file (e.g. --model model.onnx)"
                )
        self.backend = load_backend(model, threads, runtime)
        self.card = self.backend.card  # a video model's prior plane starts at zeros
        self.tta = TTA.for_backend(tta, self.backend)

    @classmethod
    def from_file(cls, path: str | Path, threads: int | None = None,
                  upsample: str | None = None, channels: str = "rgb",
                  runtime: str | None = None) -> Segmenter:
        return cls(path, threads, upsample=upsample, channels=channels, runtime=runtime)

    def _rgb(self, image) -> np.ndarray:
        """uint8 [H, W, 3] RGB of any input; ``channels`` applies to numpy arrays only."""
        rgb = as_rgb(image)
        return to_rgb(rgb, self.channels) if isinstance(image, np.ndarray) else rgb

    def __call__(self, image, upsample: str | None = None) -> np.ndarray:
        """Alpha of one image.

        Args:
            image: path, PIL image or array (uint8/uint16/float RGB, RGBA or gray; BGR or
                BGRA with ``channels="bgr"``).
            upsample: ``guided`` or ``bilinear`` for this image; None: the Segmenter's.

        Returns:
            float32 [H, W] in [0, 1], the person's alpha at the image's own size.
        """
        return predict(self.backend, self._rgb(image), self.tta, upsample or self.upsample)

    def streamer(self, temporal: str = "none", cut_threshold: float | None = CUT_THRESHOLD
                 ) -> Stream:
        """A new video stream with its own state (see ``segme.temporal``): push uint8
        [H, W, 3] frames in ``channels`` order, get (frame, alpha) pairs back in order, each
        frame as pushed."""
        return Stream(self.backend.run, self.card, temporal, cut_threshold,
                      self.stream_upsample, self.channels)

    def stream(self, frames: Iterable, temporal: str = "none",
               cut_threshold: float | None = CUT_THRESHOLD) -> Iterator[np.ndarray]:
        """Alphas of a video's frames, one per frame, in order, with temporal filtering.

        Args:
            frames: uint8 [H, W, 3] frames in ``channels`` order (or anything ``__call__``
                takes), in order.
            temporal: ``none``, ``ema``, ``flow``, ``ofd``, ``prior`` or a ``+`` chain (see
                ``segme.temporal``). ``ofd`` holds one frame back: the alpha of frame t is
                yielded after frame t+1 was read (and the last one at the end).
            cut_threshold: scene-cut sensitivity; a cut resets the state. None: never.

        Yields:
            float32 [H, W] in [0, 1] per frame. Every call has independent state.
        """
        st = Stream(self.backend.run, self.card, temporal, cut_threshold,
                    self.stream_upsample)  # RGB: _rgb has converted each frame
        for _, alpha in stream_pairs(st, (self._rgb(f) for f in frames)):
            yield alpha

    def batch(self, images: Iterable, batch_size: int = 8) -> list[np.ndarray]:
        """Alphas of several images (any sizes), run ``batch_size`` at a time."""
        if self.tta is not None:
            return [self(image) for image in images]
        out: list[np.ndarray] = []
        pending: list[tuple[np.ndarray, object, np.ndarray]] = []  # (x, meta, image)
        guided = self.upsample == "guided"

        def flush() -> None:
            alphas = self.backend.run(np.concatenate([x for x, _, _ in pending]))
            out.extend(restore(a, meta, image if guided else None)
                       for a, (_, meta, image) in zip(alphas, pending))
            pending.clear()

        for image in images:
            rgb = self._rgb(image)
            pending.append((*prepare(rgb, self.card), rgb))
            if len(pending) == batch_size:
                flush()
        if pending:
            flush()
        return out
