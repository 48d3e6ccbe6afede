"""Segmenter: an image in, the person's alpha out. No torch on this path.

    from segme import Segmenter
    seg = Segmenter.from_file("model.onnx", threads=2)
    alpha = seg("photo.jpg")  # float32 [H, W] in [0, 1] at the photo's size
    for alpha in seg.stream(frames, temporal="ofd+ema"):  # video: one alpha per frame
        ...
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from segme.io.images import as_rgb
from segme.postprocess import restore
from segme.preprocess import prepare
from segme.runtime import load_backend
from segme.temporal import CUT_THRESHOLD, Stream, stream_pairs

WEIGHTS = Path(__file__).parent / "weights"
DEFAULT_MODEL = WEIGHTS / "mnv3-unet-portraits-224.onnx"  # the built-in model: weights/README.md


class Segmenter:
    """Runs an exported segme model on images of any size and aspect.

    Args:
        model: ``.onnx`` file written by ``segme export`` (its ModelCard says how to feed
            it), or a ``.pt`` / ``.safetensors`` file when PyTorch is installed; None: the
            built-in model.
        threads: inference threads (None: the runtime's default, all cores).
    """

    def __init__(self, model: str | Path | None = None, threads: int | None = None) -> None:
        if model is None:
            model = DEFAULT_MODEL
            if not model.is_file():
                raise FileNotFoundError(
                    f"the built-in model {model.name} is missing from this installation; "
                    "pass a model file (e.g. --model model.onnx)"
                )
        self.backend = load_backend(model, threads)
        self.card = self.backend.card  # a video model's prior plane starts at zeros

    @classmethod
    def from_file(cls, path: str | Path, threads: int | None = None) -> Segmenter:
        return cls(path, threads)

    def __call__(self, image) -> np.ndarray:
        """Alpha of one image.

        Args:
            image: path, PIL image or array (uint8/uint16/float RGB, RGBA or gray).

        Returns:
            float32 [H, W] in [0, 1], the person's alpha at the image's own size.
        """
        x, meta = prepare(as_rgb(image), self.card)
        return restore(self.backend.run(x), meta)

    def streamer(self, temporal: str = "none", cut_threshold: float | None = CUT_THRESHOLD
                 ) -> Stream:
        """A new video stream with its own state (see ``segme.temporal``): push frames,
        get (frame, alpha) pairs back in order."""
        return Stream(self.backend.run, self.card, temporal, cut_threshold)

    def stream(self, frames: Iterable, temporal: str = "none",
               cut_threshold: float | None = CUT_THRESHOLD) -> Iterator[np.ndarray]:
        """Alphas of a video's frames, one per frame, in order, with temporal filtering.

        Args:
            frames: uint8 [H, W, 3] RGB frames (or anything ``as_rgb`` takes), in order.
            temporal: ``none``, ``ema``, ``flow``, ``ofd``, ``prior`` or a ``+`` chain (see
                ``segme.temporal``). ``ofd`` holds one frame back: the alpha of frame t is
                yielded after frame t+1 was read (and the last one at the end).
            cut_threshold: scene-cut sensitivity; a cut resets the state. None: never.

        Yields:
            float32 [H, W] in [0, 1] per frame. Every call has independent state.
        """
        st = self.streamer(temporal, cut_threshold)
        for _, alpha in stream_pairs(st, (as_rgb(f) for f in frames)):
            yield alpha

    def batch(self, images: Iterable, batch_size: int = 8) -> list[np.ndarray]:
        """Alphas of several images (any sizes), run ``batch_size`` at a time."""
        out: list[np.ndarray] = []
        pending: list[tuple[np.ndarray, object]] = []

        def flush() -> None:
            alphas = self.backend.run(np.concatenate([x for x, _ in pending]))
            out.extend(restore(a, meta) for a, (_, meta) in zip(alphas, pending))
            pending.clear()

        for image in images:
            pending.append(prepare(as_rgb(image), self.card))
            if len(pending) == batch_size:
                flush()
        if pending:
            flush()
        return out
