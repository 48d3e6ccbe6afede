"""`segme batch` on a real local Ray cluster (2 CPUs): the same files as the single-process
verbs, byte for byte; tables of paths; resuming; bad photos reported, never fatal; and a
model actor killed mid-run without a photo lost or written twice."""

import csv
import os
import signal

import numpy as np
import pytest
from PIL import Image

from tests.console import assert_clean_error, needs_cli, run

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

from segme import batch  # noqa: E402

MODEL = "mnv3-unet-portraits-192"  # built in, ONNX: no torch, about 2 ms a photo


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """One local Ray cluster for the module (starting one costs seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


def portrait(seed: int, h: int, w: int) -> np.ndarray:
    """uint8 [h, w, 3]: a head and shoulders (two ellipses) on a textured background."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 110, (h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:h, :w]
    cx = w * (0.4 + 0.2 * rng.random())
    head = ((yy - 0.35 * h) / (0.2 * h)) ** 2 + ((xx - cx) / (0.15 * w)) ** 2 < 1
    body = ((yy - h) / (0.35 * h)) ** 2 + ((xx - cx) / (0.4 * w)) ** 2 < 1
    img[head | body] = rng.integers(150, 255, 3, dtype=np.uint8)
    return img


def photos(folder, n: int, bad: bool = True) -> list[str]:
    """``n`` photos in ``folder`` (JPEG and PNG, several sizes; ``p0.png`` and ``p0.jpg``
    clash where the output is a PNG), and two bad files; returns the bad files' names."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        suffix = ".png" if i % 3 == 0 else ".jpg"
        name = "p0.jpg" if i == 1 else f"p{i}{suffix}"
        Image.fromarray(portrait(i, 40 + 4 * (i % 5), 32 + 6 * (i % 4))).save(folder / name)
    if not bad:
        return []
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return ["broken.png", "empty.jpg"]


def files(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def report(summary) -> list[str]:
    with open(summary.report, newline="") as f:
        return sorted(os.path.basename(row["source"]) for row in csv.DictReader(f))


@needs_cli
@pytest.mark.parametrize("verb,options", [
    ("mask", {}),
    ("cutout", {"edge": 0.1}),
    ("replace", {"bg": "background"}),  # an image file, fitted to each photo
    ("blur", {"strength": 30.0}),
])
def test_outputs_are_the_single_process_verbs_byte_for_byte(verb, options, tmp_path):
    src = tmp_path / "src"
    bad = photos(src, 14)
    if options.get("bg"):
        options = {"bg": str(tmp_path / "beach.jpg"), "harmonize": 0.5}
        Image.fromarray(portrait(99, 30, 50)).save(options["bg"])
    flags = [a for k, v in options.items() for a in (f"--{k}", v)]
    # one thread in both: the model's sums in the same order, so the same bits
    cli = run(verb, src, "-o", tmp_path / "cli", "--model", MODEL, "--threads", 1, "--jobs",
              1, *flags, ok=False)
    assert cli.returncode == 1 and cli.stderr.count("skipped:") == 2, cli.stderr
    summary = batch.run(verb, [src], tmp_path / "ray", model=MODEL, actors=1,
                        cpus_per_actor=1, **options)
    ours = files(tmp_path / "ray")
    theirs = files(tmp_path / "cli")
    assert ours.pop(batch.REPORT).count(b"\n") == 3  # the header and the two bad photos
    assert sorted(ours) == sorted(theirs) and len(ours) == 14
    if verb in ("mask", "cutout"):  # both named in full, as the CLI names them
        assert {"p0.jpg.png", "p0.png.png"} <= set(ours)
    different = [name for name in ours if ours[name] != theirs[name]]
    assert different == []
    assert (summary.written, summary.failed, summary.existing) == (14, 2, 0)
    assert report(summary) == bad


def test_a_killed_actor_loses_and_repeats_nothing(tmp_path):
    """300 photos, two model actors; one actor process is killed (SIGKILL) once the first
    results are in. Ray starts it again and retries its batch: every output exists once,
    the report holds exactly the bad photos, a re-run has nothing left to do."""
    src = tmp_path / "src"
    bad = photos(src, 300)
    state = {}

    def kill_one(summary):
        if "pid" not in state and summary.written:
            worker = next(iter(summary.workers))
            state["pid"], state["at"] = int(worker.split(":")[1]), summary.done
            os.kill(state["pid"], signal.SIGKILL)

    summary = batch.run("mask", [src], tmp_path / "out", model=MODEL, actors=2,
                        cpus_per_actor=0.5, batch_rows=8, progress=kill_one)
    assert "pid" in state and state["at"] < summary.photos, "the kill came after the run"
    with pytest.raises(ProcessLookupError):
        os.kill(state["pid"], 0)
    outputs = files(tmp_path / "out")
    assert outputs.pop(batch.REPORT)
    names = sorted(p.name for p in src.iterdir() if p.name not in bad)
    expected = {"p0.jpg.png", "p0.png.png"} | {f"{os.path.splitext(n)[0]}.png"
                                               for n in names if not n.startswith("p0.")}
    assert set(outputs) == expected and len(outputs) == 300  # no temporary file left
    for data in list(outputs.values())[:20]:
        assert data.startswith(b"\x89PNG")
    assert (summary.photos, summary.written, summary.failed) == (302, 300, 2)
    assert sum(summary.workers.values()) == 300
    assert report(summary) == bad

    # resumable: what exists is kept; what is missing (deleted here) is written again
    for name in sorted(outputs)[:5]:
        (tmp_path / "out" / name).unlink()
    again = batch.run("mask", [src], tmp_path / "out", model=MODEL, actors=1)
    assert (again.written, again.existing, again.failed) == (5, 295, 2)
    assert set(files(tmp_path / "out")) == expected | {batch.REPORT}
    assert report(again) == bad


def test_tables_of_paths(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    photos(tmp_path / "shots" / "a", 3, bad=False)
    photos(tmp_path / "shots" / "b", 2, bad=False)
    rel = ["shots/a/p0.jpg", "shots/a/p2.jpg", "shots/b/p0.png", "shots/b/missing.jpg"]
    pq.write_table(pa.table({"id": [1, 2, 3, 4], "path": rel}), tmp_path / "list.parquet")
    summary = batch.run("mask", [tmp_path / "list.parquet"], tmp_path / "out", column="path",
                        model=MODEL, actors=1)
    # relative paths are mirrored under OUT, as --recursive mirrors subfolders
    assert sorted(files(tmp_path / "out")) == [batch.REPORT, "shots/a/p0.png",
                                               "shots/a/p2.png", "shots/b/p0.png"]
    assert (summary.written, summary.failed) == (3, 1)
    assert report(summary) == ["missing.jpg"]
    # a CSV with an absolute path: named by its file name, as a file on the command line
    (tmp_path / "list.csv").write_text(f"path,x\n{tmp_path / 'shots/a/p0.png'},1\n")
    summary = batch.run("cutout", [tmp_path / "list.csv"], tmp_path / "out2", column="path",
                        model=MODEL, actors=1)
    assert sorted(files(tmp_path / "out2")) == sorted([batch.REPORT, "p0.png"])


@needs_cli
def test_user_mistakes_are_one_line_before_any_work(tmp_path):
    photos(tmp_path / "src", 2, bad=False)
    (tmp_path / "t.csv").write_text("file\nsrc/p0.jpg\n")
    cases = [
        (["mask", tmp_path / "t.csv", "--column", "path"], "has no column 'path'", "file"),
        (["mask", tmp_path / "t.csv"], "--column",),
        (["mask", tmp_path / "src", "--bg", "red"], "--bg is replace's option"),
        (["paint", tmp_path / "src"], "mask, cutout, replace, blur"),
        (["mask", tmp_path / "nothing"], "source not found"),
        (["mask", tmp_path / "src", "--model", tmp_path / "m.onnx"], "model file not found"),
        (["mask", tmp_path / "src", "--model", tmp_path / "m.pt"], ".onnx and .tflite"),
        (["replace", tmp_path / "src", "--bg", "no-such-colour"], "colour"),
    ]
    for args, *words in cases:
        assert_clean_error(run("batch", *args, "-o", tmp_path / "out", ok=False), *words)
    assert not (tmp_path / "out").exists()
