"""ONNX Runtime backend: a model file in, alpha out. No torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segme.cards import CARD_KEY, ModelCard


def session_options(threads: int | None = None):
    """ONNX Runtime session options: all graph optimisations (which fuse QDQ groups into
    ``QLinear*`` kernels), ``threads`` intra-op threads (None = all cores)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return opts


class OnnxBackend:
    """Runs an exported segme model with ONNX Runtime.

    Args:
        path: ``.onnx`` file written by ``segme export`` (carries its ModelCard).
        threads: intra-op threads (None = ONNX Runtime's default, all cores).
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        try:
            self.session = ort.InferenceSession(
                str(path), session_options(threads), providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own exception types
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(f"{path} is not a valid ONNX model: {first}") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if CARD_KEY not in meta:
            raise ValueError(f"{path} has no segme model card; export it with `segme export`")
        self.card = ModelCard.from_json(meta[CARD_KEY])
        self.input_name = self.session.get_inputs()[0].name

    def run(self, x: np.ndarray) -> np.ndarray:
        """x: float32 [N, C, h, w] prepared input -> alpha float32 [N, 1, h, w] in [0, 1]."""
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, np.float32)})[0]
