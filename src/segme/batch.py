"""Batch segmentation on Ray Data: a catalogue of photos on one machine or a cluster.

    from segme import batch
    summary = batch.run("mask", ["shots/"], out="masks/", actors=2)
    print(summary.line())            # wrote 1998 of 2000 images to masks/ ...

The photos become one Ray Data dataset, a row a photo, in four steps:

- plan (the driver): SOURCE arguments (files, folders, globs, or a column of paths in a
  Parquet / CSV table) -> (photo, output file) pairs, named exactly as ``segme VERB``
  names them (``segme.cli._apply.plan_targets``: the same folders, suffixes and clashes).
- decode (Ray tasks): a photo whose output exists already is skipped (a re-run resumes),
  the others are read (``segme.io.images.read_image``) and prepared for the model.
- model (a pool of Ray actors): one ONNX Runtime or LiteRT session per actor, with as many
  threads as CPUs Ray gives the actor; a photo at a time, as ``segme VERB`` runs it.
- write (Ray tasks): the alpha back at the photo's size (``segme.postprocess.restore``),
  the verb's picture (``segme.cli._live.Look``, the CLI's own) and the file, written
  atomically (``segme.io.images.write_image``).

Outputs are those of ``segme VERB`` byte for byte: the same functions, in the same order,
with the same thread count (tests/test_batch.py). A photo that cannot be read or written
is listed in ``OUT/segme-batch-report.csv`` and never stops the run. An actor that dies is
restarted by Ray and its batch retried; outputs are written once each (a retried write
renames the same finished file over itself). Torch is never imported.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segme.io.sources import ImageInput

VERBS = ("mask", "cutout", "replace", "blur")
REPORT = "segme-batch-report.csv"  # in OUT: the photos that failed, and why
TABLES = (".parquet", ".csv")  # sources that list photos in a column
TASK_CPUS = 0.5  # what a decode or write task asks of Ray: two share a core
BATCH_ROWS = 16  # photos a task or an actor call takes at once
RUNTIMES = (".onnx", ".tflite")  # the torch-free backends an actor may run
ACTOR_MEMORY = 500e6  # bytes Ray reserves per model actor (measured RSS: docs/batch.md)


@dataclass
class Summary:
    """What a batch run did.

    Attributes:
        verb: mask, cutout, replace or blur.
        out: the output folder.
        photos: photos planned (each once, whatever happened to it).
        written: outputs written by this run.
        existing: outputs already there (an earlier run's), left as they were.
        failed: photos that could not be read or written (the report lists them).
        seconds: wall time of the pipeline, from the first photo in to the last out.
        startup: wall time before that: planning, and joining or starting Ray.
        actors: model actors asked for.
        report: the report file (a header and one row per failed photo).
        workers: photos each model actor ran, by ``node:pid`` (an actor that Ray
            restarted shows up under its new process id too).
        failures: (photo, reason) of each failed photo, as in the report.
    """

    verb: str
    out: Path
    photos: int = 0
    written: int = 0
    existing: int = 0
    failed: int = 0
    seconds: float = 0.0
    startup: float = 0.0
    actors: int = 0
    report: Path | None = None
    workers: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def done(self) -> int:
        """Rows that came back from the pipeline (written, existing or failed)."""
        return self.written + self.existing + self.failed

    @property
    def rate(self) -> float:
        """Photos written a second."""
        return self.written / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        """One line for a person: what was written, skipped and failed, and how fast."""
        parts = [f"wrote {self.written} of {self.photos} images to {self.out}"]
        if self.existing:
            parts.append(f"{self.existing} already there")
        if self.failed:
            parts.append(f"{self.failed} failed (listed in {self.report})")
        parts.append(f"{self.rate:.1f} images/s with {self.actors} model actor(s) in "
                     f"{self.seconds:.1f} s (+{self.startup:.1f} s to plan and start)")
        return "; ".join(parts)


# planning (the driver) ------------------------------------------------------------------

def _table_inputs(path: Path, column: str | None) -> list[ImageInput]:
    """The photos a Parquet or CSV table lists in ``column``: a relative path is read from
    the table's folder and mirrored under OUT (as ``--recursive`` mirrors subfolders), an
    absolute one is named by its file name (as a file given on the command line)."""
    if column is None:
        raise ValueError(f"{path.name} is a table: name the column of photo paths with "
                         "--column")
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
            table = pq.read_table(path, columns=[column]) if column in names else None
        else:
            import pyarrow.csv as pcsv

            table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
                column_types={column: "string"}))
            names = table.column_names
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise ValueError(f"cannot read the table {path}: {str(e).splitlines()[0]}") from None
    if table is None or column not in names:
        raise ValueError(f"{path.name} has no column {column!r}; its columns: "
                         f"{', '.join(names)}")
    inputs = []
    for text in table.column(column).to_pylist():
        if not text:
            continue
        p = Path(text)
        full = p if p.is_absolute() else path.parent / p
        rel = Path(p.name).with_suffix("") if p.is_absolute() else p.with_suffix("")
        inputs.append(ImageInput(str(full), rel, full, full.suffix.lower()))
    if not inputs:
        raise FileNotFoundError(f"column {column!r} of {path} lists no photos")
    return inputs


def plan(verb: str, sources: Sequence[str], out: str | Path, column: str | None = None,
         recursive: bool = False, notes: list[str] | None = None
         ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Where each photo's output goes, as ``segme VERB SOURCE... -o OUT`` would write it.

    Returns:
        (todo, refused): (photo, output file) pairs to run, and (photo, reason) pairs
        refused before any work (an output that would overwrite an input).

    Raises:
        FileNotFoundError, ValueError: a source that names no photo, a table without the
            column (one line each, as the CLI's).
    """
    from segme.cli._apply import plan_targets, png, same_suffix
    from segme.io.sources import STDIN, expand_sources, is_url
    from segme.io.video import is_video

    notes = [] if notes is None else notes
    folder = Path(out)
    inputs: list[ImageInput] = []
    plain = []
    for s in sources:
        if s == STDIN or is_url(s) or is_video(s):
            raise ValueError(f"segme batch reads photo files (folders, globs, tables); {s} "
                             f"is for `segme {verb}`")
        if Path(s).suffix.lower() in TABLES and Path(s).is_file():
            inputs += _table_inputs(Path(s), column)
        else:
            plain.append(s)
    if column is not None and len(plain) == len(sources):
        raise ValueError("--column names the column of a .parquet or .csv source; no source "
                         "is a table")
    if plain:
        inputs += expand_sources(plain, recursive, exclude=folder, notes=notes)
    suffix = png if verb in ("mask", "cutout") else same_suffix
    targets = plan_targets(inputs, folder, suffix, notes)
    sources_in = {i.path.resolve() for i in targets if i.path is not None}
    todo, refused = [], []
    for i, t in targets.items():
        if t.resolve() in sources_in:  # the CLI's message for the same case
            refused.append((i.name, f"{i.name}: refusing to overwrite an input; choose "
                                    "another --out"))
        else:
            todo.append((str(i.path), str(t)))
    return todo, refused


# the steps on Ray (module-level functions and a class: Ray ships them to its workers) ---

def _failed(message: str | BaseException) -> str:
    return str(message).strip().splitlines()[0] if str(message).strip() else \
        type(message).__name__


def decode(batch: dict[str, np.ndarray], card, overwrite: bool) -> dict[str, np.ndarray]:
    """Decode step: each photo read and prepared for the model (or skipped, or failed).

    Adds ``status`` (``run`` / ``existing`` / ``failed``), ``error``, ``image`` (the uint8
    [H, W, 3] RGB photo's bytes), ``height``, ``width``, ``x`` (float32 [1, C, h, w]
    bytes) and ``grey`` (``Meta.grey``'s bytes)."""
    from segme.io.images import ImageError, read_image
    from segme.preprocess import prepare

    cols = {k: [] for k in ("status", "error", "image", "height", "width", "x", "grey")}
    for source, target in zip(batch["source"], batch["target"]):
        row = {"status": "run", "error": "", "image": b"", "height": 0, "width": 0,
               "x": b"", "grey": b""}
        if not overwrite and os.path.exists(target):
            row["status"] = "existing"
        else:
            try:
                image = read_image(source)
                x, meta = prepare(image, card)
                row.update(image=image.tobytes(), height=meta.height, width=meta.width,
                           x=x.tobytes(), grey=meta.grey.tobytes())
            except (ImageError, ValueError, OSError) as e:
                row.update(status="failed", error=_failed(e))
        for k, v in row.items():
            cols[k].append(v)
    out = {"source": batch["source"], "target": batch["target"]}
    for k, v in cols.items():
        out[k] = np.array(v, dtype=object if k in ("error", "image", "x", "grey", "status")
                          else np.int64)
    return out


class Model:
    """Model step, one per Ray actor: the backend opened once, a photo at a time.

    Args:
        model: an ``.onnx`` or ``.tflite`` file, the same path on every node.
        threads: inference threads; None: the CPUs Ray gave this actor (at least 1).
    """

    def __init__(self, model: str, threads: int | None = None) -> None:
        import ray

        from segme.runtime import load_backend

        if threads is None:
            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
            threads = max(1, int(cpus))
        self.backend = load_backend(model, threads)
        self.card = self.backend.card
        node = ray.get_runtime_context().get_node_id()[:8]
        self.worker = f"{node}:{os.getpid()}"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Adds ``alpha`` (float32 [1, 1, h, w] bytes) and ``worker``; drops ``x``."""
        c = (4 if self.card.stateful_inputs else 3)
        h, w = self.card.input_size
        alphas = []
        for status, x in zip(batch["status"], batch["x"]):
            if status != "run":
                alphas.append(b"")
                continue
            # one photo a call, as `segme VERB` runs it: the same answer to the last bit
            # (batched calls were also slower on a CPU: docs/batch.md)
            x = np.frombuffer(x, np.float32).reshape(1, c, h, w)
            alphas.append(np.ascontiguousarray(self.backend.run(x), np.float32).tobytes())
        out = {k: v for k, v in batch.items() if k != "x"}
        out["alpha"] = np.array(alphas, dtype=object)
        out["worker"] = np.array([self.worker] * len(alphas), dtype=object)
        return out


@functools.lru_cache(maxsize=4)
def look(verb: str, bg: str | None, fit: str, strength: float, edge: float,
         harmonize: float):
    """The verb's ``Look`` (the CLI's renderer), built once per worker process: a
    background photo is read once, not once a batch."""
    from segme.cli._live import Background, Look

    backgrounds = [Background(bg, fit)] if bg is not None else []
    return Look(verb, strength, backgrounds=backgrounds, harmonize=harmonize, edge=edge)


def write(batch: dict[str, np.ndarray], card, upsample: str, effect: tuple
          ) -> dict[str, np.ndarray]:
    """Write step: the alpha restored, the verb's picture rendered and written atomically.

    Keeps ``source``, ``target``, ``status`` (``written`` / ``existing`` / ``failed``),
    ``error`` and ``worker``."""
    from segme.io.images import ImageError, write_image
    from segme.postprocess import restore
    from segme.preprocess import Meta

    render = look(*effect).render
    h, w = card.input_size
    status, error = list(batch["status"]), list(batch["error"])
    for k, (source, target) in enumerate(zip(batch["source"], batch["target"])):
        if status[k] != "run":
            continue
        try:
            height, width = int(batch["height"][k]), int(batch["width"][k])
            image = np.frombuffer(batch["image"][k], np.uint8).reshape(height, width, 3)
            grey = np.frombuffer(batch["grey"][k], np.uint8).reshape(h, w)
            alpha = np.frombuffer(batch["alpha"][k], np.float32).reshape(1, 1, h, w)
            alpha = restore(alpha, Meta(height, width, grey),
                            image if upsample == "guided" else None)
            array = render(image, alpha, Path(source))
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            write_image(target, array)
            status[k] = "written"
        except (ImageError, ValueError, OSError) as e:
            status[k], error[k] = "failed", _failed(e)
    return {"source": batch["source"], "target": batch["target"],
            "status": np.array(status, dtype=object), "error": np.array(error, dtype=object),
            "worker": batch["worker"]}


# running ----------------------------------------------------------------------------------

def _connect(address: str | None, cpus: int | None) -> bool:
    """Join (or start) Ray; True when this call started it (and should stop it)."""
    import logging

    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the caller shows progress (the CLI's bar)
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    if ray.is_initialized():
        return False
    try:
        if address is None or address == "local":
            ray.init(num_cpus=cpus, logging_level=logging.ERROR, include_dashboard=False)
        else:
            ray.init(address=address, logging_level=logging.ERROR)
    except ConnectionError as e:
        raise ConnectionError(f"cannot reach a Ray cluster at {address}: {_failed(e)}; start "
                              "one with `ray start --head` or leave out --ray") from None
    return True


def _write_report(path: Path, failures: list[tuple[str, str]]) -> None:
    from segme.io.files import write_text_atomic

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["source", "error"])
    writer.writerows(sorted(failures))
    write_text_atomic(path, buf.getvalue())


def run(verb: str, sources: Sequence[str | Path], out: str | Path = "out", *,
        model: str | Path | None = None, column: str | None = None, recursive: bool = False,
        actors: int | None = None, cpus_per_actor: float = 1.0, threads: int | None = None,
        address: str | None = None, cpus: int | None = None, upsample: str | None = None,
        bg: str | None = None, fit: str = "fill", strength: float | None = None,
        edge: float = 0.0, harmonize: float = 0.0, overwrite: bool = False,
        batch_rows: int = BATCH_ROWS, progress: Callable[[Summary], None] | None = None,
        notes: list[str] | None = None) -> Summary:
    """Segment every photo that ``sources`` name on Ray and write ``verb``'s output for each.

    Args:
        verb: ``mask`` (8-bit PNG), ``cutout`` (RGBA PNG), ``replace`` or ``blur`` (the
            photo's format), as the CLI verbs of the same names.
        sources: photo files, folders, globs, or ``.parquet`` / ``.csv`` tables whose
            ``column`` lists photo paths (relative ones from the table's folder).
        out: the output folder (created); ``OUT/segme-batch-report.csv`` lists failures.
        model: an ``.onnx`` / ``.tflite`` file or a built-in model's name (None: the
            built-in default); the same path must exist on every node.
        recursive: folder sources: their subfolders too, mirrored under ``out``.
        actors: model actors (None: half the cluster's CPUs, at least 1).
        cpus_per_actor: CPUs Ray reserves for each actor; its session runs that many
            threads (at least 1) unless ``threads`` says otherwise.
        address: the Ray cluster (``auto``, ``HOST:PORT``, ``ray://HOST:10001``); None: the
            one this process has joined, else a new local one with ``cpus`` CPUs.
        upsample: ``guided`` (default, as for photos in the CLI) or ``bilinear``.
        bg, fit, harmonize: ``replace``'s background (colour or image file), its fit and the
            colour transfer; ``strength``: ``blur``'s; ``edge``: smooth-step edge for any.
        overwrite: write every output again (default: an existing output is kept, so a
            re-run resumes an interrupted one).
        progress: called with the running Summary after each batch of results.
        notes: collects what the user should know (as the CLI's notes).

    Returns:
        The Summary; failures are in it and in the report, never raised.

    Raises:
        ValueError, FileNotFoundError, ConnectionError: a user mistake (bad verb, option,
            source, model or address), before any output is written.
        ImportError: Ray is missing (``pip install 'segme[ray]'``).
    """
    from segme import effects
    from segme.postprocess import DEFAULT_UPSAMPLE, check_upsample
    from segme.runtime import load_backend
    from segme.segmenter import DEFAULT_MODEL
    from segme.weights import resolve_model

    if verb not in VERBS:
        raise ValueError(f"the verb must be one of {', '.join(VERBS)}, got {verb!r}")
    if bg is not None and verb != "replace":
        raise ValueError("--bg is replace's option")
    if strength is not None and verb != "blur":
        raise ValueError("--strength is blur's option")
    if harmonize and verb != "replace":
        raise ValueError("--harmonize is replace's option")
    if not 0 <= edge <= 0.45:
        raise ValueError(f"--edge takes 0 (off) to 0.45, got {edge}")
    if actors is not None and actors < 1:
        raise ValueError("--actors must be 1 or more")
    if cpus_per_actor <= 0 or batch_rows < 1:
        raise ValueError("--cpus-per-actor and the batch size must be positive")
    if not sources:
        raise ValueError("give at least one source")
    upsample = check_upsample(upsample or DEFAULT_UPSAMPLE)
    if bg is not None:
        from segme.io.video import is_video

        if is_video(bg):
            raise ValueError("--bg for a batch of photos is a colour or an image, not a video")
    strength = effects.DEFAULT_STRENGTH if strength is None else strength
    effect = (verb, bg, fit, float(strength), float(edge), float(harmonize))
    look(*effect)  # a bad colour, background file or fit fails here, before Ray starts
    path = resolve_model(model) if model is not None else DEFAULT_MODEL
    if path.suffix.lower() not in RUNTIMES:
        raise ValueError(f"segme batch runs .onnx and .tflite models, not {path.suffix}; "
                         f"export it first: segme export --model {path} -o model.onnx")
    card = load_backend(path, 1).card  # a bad model file fails here too
    if card.stateful_inputs:
        raise ValueError("this model takes the previous frame's alpha (a video model); "
                         "use a photo model")
    path = path.resolve()

    notes = [] if notes is None else notes
    t0 = time.perf_counter()
    todo, refused = plan(verb, [str(s) for s in sources], out, column, recursive, notes)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"output folder is not writable: {folder}")
    summary = Summary(verb, folder, photos=len(todo) + len(refused), failed=len(refused),
                      report=folder / REPORT, failures=list(refused))
    started = _connect(address, cpus) if todo else False
    summary.startup = time.perf_counter() - t0
    try:
        if todo:
            _execute(summary, todo, path, card, upsample, effect, actors, cpus_per_actor,
                     threads, overwrite, batch_rows, progress)
    finally:
        if started:
            import ray

            ray.shutdown()
    summary.seconds = time.perf_counter() - t0 - summary.startup
    _write_report(summary.report, summary.failures)
    return summary


def _execute(summary: Summary, todo: list[tuple[str, str]], model: Path, card, upsample: str,
             effect: tuple, actors: int | None, cpus_per_actor: float, threads: int | None,
             overwrite: bool, batch_rows: int, progress) -> None:
    """Build the dataset, run it, and count what comes back into ``summary``."""
    import pyarrow as pa
    import ray

    total = ray.cluster_resources().get("CPU", 0.0)
    actors = actors or max(1, int(total // 2))
    summary.actors = actors
    left = total - actors * cpus_per_actor
    if left < TASK_CPUS:
        raise ValueError(f"{actors} actor(s) x {cpus_per_actor:g} CPU leave {max(left, 0):g} of "
                         f"the cluster's {total:g} CPUs for decoding and writing (needs "
                         f"{TASK_CPUS:g}); use fewer --actors or a smaller --cpus-per-actor")
    table = pa.table({"source": [s for s, _ in todo], "target": [t for _, t in todo]})
    # enough blocks for every CPU to have work, few enough that a block is not one photo
    blocks = max(1, min(len(todo) // batch_rows, 4 * int(max(total, 1))))
    ds = ray.data.from_arrow(table, override_num_blocks=blocks)
    ds = ds.map_batches(decode, batch_size=batch_rows, batch_format="numpy",
                        fn_kwargs={"card": card, "overwrite": overwrite}, num_cpus=TASK_CPUS)
    ds = ds.map_batches(
        Model, batch_size=batch_rows, batch_format="numpy",
        fn_constructor_kwargs={"model": str(model), "threads": threads},
        compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=cpus_per_actor,
        # a session's memory, reserved; also what keeps Ray Data from fusing the decode
        # tasks into the actors (it fuses a task step into the next actor step when their
        # resources match): decoding belongs in tasks, where any free CPU can help. A dead
        # actor is started again and its batch retried: Ray Data's defaults for an actor
        # pool (max_restarts=-1, max_task_retries=-1)
        memory=ACTOR_MEMORY)
    ds = ds.map_batches(write, batch_size=batch_rows, batch_format="numpy",
                        fn_kwargs={"card": card, "upsample": upsample, "effect": effect},
                        num_cpus=TASK_CPUS)
    seen, rows = set(), 0
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for source, status, error, worker in zip(batch["source"], batch["status"],
                                                 batch["error"], batch["worker"]):
            seen.add(source)
            rows += 1
            if status == "written":
                summary.written += 1
            elif status == "existing":
                summary.existing += 1
            else:
                summary.failed += 1
                summary.failures.append((str(source), str(error)))
            if status == "written":
                summary.workers[str(worker)] = summary.workers.get(str(worker), 0) + 1
        if progress is not None:
            progress(summary)
    if rows != len(todo) or len(seen) != len(todo):
        # Ray Data returns every row once, retries included; anything else is a bug that
        # must not pass as a finished run
        raise RuntimeError(f"{len(todo)} photos went in, {rows} rows came back for "
                           f"{len(seen)} photos")
