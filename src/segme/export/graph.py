"""Graph statistics of exported files: operator counts by type, and the input layout.

What a runtime executes decides its speed: a quantised graph that still carries layout
``Transpose`` ops or ``Dequantize`` / ``Quantize`` pairs between its convolutions runs float
kernels with conversions around them. ``op_counts`` shows that before and after a change;
for ONNX it can count the graph ONNX Runtime runs after its own fusions (``QLinearConv``
and the like), which is what the kernels see.
"""

from __future__ import annotations

import collections
import tempfile
from pathlib import Path


def op_counts(path: str | Path, optimized: bool = False) -> dict[str, int]:
    """Operator type -> count in a ``.onnx``, ``.tflite`` or OpenVINO ``.xml`` file.

    Args:
        path: model file.
        optimized: for ``.onnx``, count the graph ONNX Runtime runs on the CPU after all
            its graph optimisations (fused ``QLinear*`` kernels), not the stored one.

    Returns:
        Counts sorted by decreasing count, then name.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        names = _onnx_ops(path, optimized)
    elif suffix == ".tflite":
        names = _tflite_ops(path)
    elif suffix == ".xml":
        names = _openvino_ops(path)
    else:
        raise ValueError(f"op counts read .onnx, .tflite or .xml files, got {path.name}")
    counts = collections.Counter(names)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _onnx_ops(path: Path, optimized: bool) -> list[str]:
    import onnx

    if optimized:
        import onnxruntime as ort

        from segme.runtime.onnx import session_options

        with tempfile.TemporaryDirectory() as tmp:
            opts = session_options(threads=1)
            opts.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
            ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            model = onnx.load(opts.optimized_model_filepath)
    else:
        model = onnx.load(str(path))
    return [n.op_type for n in model.graph.node]


def _tflite_ops(path: Path) -> list[str]:
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        # builtin codes above 127 live in a second field (the first is a deprecated int8)
        op = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        codes.append(names.get(op, f"CUSTOM:{code.CustomCode()}"))
    out = []
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        out += [codes[graph.Operators(i).OpcodeIndex()] for i in range(graph.OperatorsLength())]
    return out


def _openvino_ops(path: Path) -> list[str]:
    import openvino as ov

    model = ov.Core().read_model(str(path))
    skip = {"Parameter", "Result", "Constant"}
    return [op.get_type_name() for op in model.get_ordered_ops()
            if op.get_type_name() not in skip]


def ort_kernel_ms(path: str | Path, runs: int = 100, threads: int = 1) -> dict[str, float]:
    """Milliseconds per call that ONNX Runtime's kernels spend in each op type of ``path``
    (its own profiler, mean of ``runs`` calls, batch 1, random input): where an INT8
    graph gains or loses."""
    import json

    import numpy as np
    import onnxruntime as ort

    from segme.runtime.onnx import OnnxBackend, session_options

    card = OnnxBackend(path).card
    with tempfile.TemporaryDirectory() as tmp:
        opts = session_options(threads)
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).standard_normal(
            (1, card.in_channels, *card.input_size)).astype(np.float32)
        feed = {session.get_inputs()[0].name: x}
        for _ in range(runs):  # the first calls' set-up is spread over all of them
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    totals: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            totals[e["args"]["op_name"]] += e["dur"] / 1000 / runs
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def format_counts(columns: dict[str, dict[str, int]]) -> str:
    """A markdown table: one row per operator type, one column per file (label -> counts)."""
    ops = sorted({op for c in columns.values() for op in c},
                 key=lambda op: (-max(c.get(op, 0) for c in columns.values()), op))
    lines = ["| op | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
    for op in ops:
        lines.append(f"| {op} | " + " | ".join(str(c.get(op, 0)) for c in columns.values())
                     + " |")
    lines.append("| **total** | " + " | ".join(str(sum(c.values())) for c in columns.values())
                 + " |")
    return "\n".join(lines)
