"""LiteRT (TensorFlow Lite) backend, XNNPACK on the CPU. No torch.

Runs ``.tflite`` files. ``segme export`` writes the ModelCard into the file's metadata; a
file without one (a third-party model such as MediaPipe's selfie segmenter) needs its card
passed in: input size and normalisation.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from segme.cards import CARD_KEY, ModelCard


def card_in(data: bytes, name: str = "this file") -> ModelCard | None:
    """The segme card in a TFLite flatbuffer's metadata, or None."""
    from ai_edge_litert import schema_py_generated as schema

    if len(data) < 8 or bytes(data[4:8]) != b"TFL3":  # the flatbuffer's file identifier
        raise ValueError(f"{name} is not a TFLite model (no TFL3 identifier)")
    try:
        model = schema.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            meta = model.Metadata(i)
            if meta.Name() is not None and meta.Name().decode() == CARD_KEY:
                buf = model.Buffers(meta.Buffer())
                if buf.DataLength():
                    return ModelCard.from_json(buf.DataAsNumpy().tobytes())
                # writers such as ai-edge-quantizer keep larger buffers after the flatbuffer,
                # addressed by offset and size from the start of the file
                start, size = buf.Offset(), buf.Size()
                if start <= 1 or start + size > len(data):
                    raise ValueError("card buffer out of range")
                return ModelCard.from_json(bytes(data[start:start + size]))
    except (IndexError, ValueError, TypeError, AttributeError, struct.error):
        raise ValueError(f"{name} is not a valid TFLite model") from None
    return None


@contextlib.contextmanager
def native_logs_silenced() -> Iterator[None]:
    """Send what is written to file descriptor 2 inside the block to /dev/null.

    TensorFlow, LiteRT and torchao log from C++ or before Python's logging is configured
    (oneDNN notices, "Created TensorFlow Lite XNNPACK delegate", libraries they could not
    load): chatter no warnings filter or logging level reaches. Errors still arrive as
    exceptions; anything this process writes to stderr meanwhile is lost too, so the block
    holds the noisy call alone.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def read_card(path: Path) -> ModelCard | None:
    """The segme card in a TFLite file's metadata, or None."""
    return card_in(path.read_bytes(), str(path))


class LiteRTBackend:
    """Runs a TFLite model with ai-edge-litert's interpreter.

    Args:
        path: ``.tflite`` file.
        threads: interpreter threads (None = LiteRT's default).
        card: the model's card; default: the one embedded by ``segme export``.
    """

    def __init__(self, path: str | Path, threads: int | None = None,
                 card: ModelCard | None = None) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise ImportError("running .tflite files needs LiteRT: pip install 'segme[litert]'") from None
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        card = card or read_card(path)
        if card is None:
            raise ValueError(f"{path} has no segme model card; export it with `segme export`")
        try:
            with native_logs_silenced():
                self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"{path} is not a valid TFLite model: {e}") from None
        self.card = card
        self._in = self.interpreter.get_input_details()[0]
        self._out = self.interpreter.get_output_details()[0]
        # NHWC when the card says so, or (files written before cards had a layout) when
        # the last input axis holds the channels
        self._nhwc = card.layout == "nhwc" or int(self._in["shape"][-1]) == card.in_channels
        self._lock = threading.Lock()  # one interpreter: calls from threads take turns

    def run(self, x: np.ndarray) -> np.ndarray:
        """x: float32 [N, C, h, w] prepared input -> alpha float32 [N, 1, h, w] in [0, 1]."""
        outs = []
        for sample in np.asarray(x, np.float32):  # the file's batch axis is fixed at 1
            # [C, h, w] -> [h, w, C]: cv2.merge interleaves planes ~20x faster than a
            # numpy transpose copy
            t = cv2.merge(list(sample)) if self._nhwc else sample
            if t.ndim == 2:  # cv2.merge of one plane drops the channel axis
                t = t[..., None]
            with self._lock:
                self.interpreter.set_tensor(self._in["index"], _quantize(t[None], self._in))
                self.interpreter.invoke()
                y = self.interpreter.get_tensor(self._out["index"])
            y = _dequantize(y, self._out)[0]
            outs.append(y.transpose(2, 0, 1) if y.ndim == 3 and y.shape[-1] == 1 else y)
        return np.stack(outs).reshape(len(outs), 1, *outs[0].shape[-2:])


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float input -> the tensor's type (integer models take scale / zero-point inputs)."""
    dtype = detail["dtype"]
    if dtype == np.float32:
        return np.ascontiguousarray(x, np.float32)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if y.dtype == np.float32:
        return y
    scale, zero = detail["quantization"]
    return ((y.astype(np.float32) - zero) * scale).astype(np.float32)
