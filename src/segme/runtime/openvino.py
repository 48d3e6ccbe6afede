"""OpenVINO backend (the ``openvino`` extra): IR (``.xml`` + ``.bin``) or ``.onnx`` files
on the CPU plugin. No torch.

``segme export -o model.xml`` writes the IR with the ModelCard in the model's runtime info
(``rt_info``, inside the ``.xml``); an ``.onnx`` file carries it in its metadata.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from segme.cards import CARD_KEY, ModelCard

RT_INFO_PATH = ["segme", "card"]  # where the card JSON lives in an IR's rt_info
PRECISIONS = ("f32", "bf16", "f16")


def _import_openvino():
    try:
        import openvino as ov
    except ImportError:
        raise ImportError("running models with OpenVINO needs it: pip install "
                          "'segme[openvino]'") from None
    return ov


def ir_card(model) -> ModelCard | None:
    """The card in an ``openvino.Model``'s rt_info, or None."""
    if not model.has_rt_info(RT_INFO_PATH):
        return None
    return ModelCard.from_json(model.get_rt_info(RT_INFO_PATH).astype(str))


def _onnx_card(path: Path) -> ModelCard | None:
    import onnxruntime as ort

    opts = ort.SessionOptions()  # read the metadata only: no optimisation pass
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    meta = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    text = meta.get_modelmeta().custom_metadata_map.get(CARD_KEY)
    return None if text is None else ModelCard.from_json(text)


class OpenVINOBackend:
    """Runs an IR or ONNX model with OpenVINO's CPU plugin.

    Args:
        path: ``.xml`` IR (its ``.bin`` beside it) or ``.onnx`` file written by
            ``segme export``.
        threads: inference threads (None = OpenVINO's default, all cores).
        precision: ``f32`` (default: the float model's alphas), ``bf16`` (AVX-512 BF16 and
            AMX CPUs) or ``f16`` (CPUs with AVX-512 FP16; elsewhere OpenVINO computes f32).
            An INT8 IR runs its integer ops in int8 whatever this says.
    """

    def __init__(self, path: str | Path, threads: int | None = None,
                 precision: str = "f32") -> None:
        ov = _import_openvino()
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, "
                             f"got {precision!r}")
        core = ov.Core()
        try:
            model = core.read_model(str(path))
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(f"{path} is not a valid OpenVINO or ONNX model: {first}") from None
        card = ir_card(model) if path.suffix.lower() == ".xml" else _onnx_card(path)
        if card is None:
            raise ValueError(f"{path} has no segme model card; export it with `segme export`")
        self.card = card
        # latency: one stream, every thread on one request (the default on this plugin
        # otherwise splits the cores into throughput streams)
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.compiled = core.compile_model(model, "CPU", config)
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()  # one request: calls from threads take turns

    def run(self, x: np.ndarray) -> np.ndarray:
        """x: float32 [N, C, h, w] prepared input -> alpha float32 [N, 1, h, w] in [0, 1]."""
        x = np.ascontiguousarray(x, np.float32)
        with self._lock:
            out = self._request.infer({0: x}, share_inputs=True)
            return np.array(out[0], np.float32)  # a copy: the request reuses its buffer
