"""The console script behaves the way people type: --version, built-in model names in every
verb, the pip command of a missing extra, quiet exports, logs without progress bars."""

import importlib.util
import os
import re

import pytest

import segme
from segme.runtime import WEIGHTS
from tests.console import assert_clean_error, needs_cli, run

pytestmark = needs_cli

# a sitecustomize that makes `import torch` fail as in a base install (no extras)
NO_TORCH = '''import sys


class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("No module named 'torch'", name="torch")


sys.meta_path.insert(0, NoTorch())
'''


@pytest.fixture(scope="module")
def no_torch(tmp_path_factory):
    """An environment for the console script in which torch cannot be imported."""
    folder = tmp_path_factory.mktemp("no_torch")
    (folder / "sitecustomize.py").write_text(NO_TORCH)
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    run("synth", root, "--train", 4, "--val", 2)
    return root


def test_version():
    assert run("--version").stdout == f"segme {segme.__version__}\n"
    assert run("-V").stdout == f"segme {segme.__version__}\n"


def test_export_takes_builtin_names(tmp_path):
    out = tmp_path / "m.safetensors"
    assert run("export", "--model", "mnv3-unet-portraits-224", "-o", out).stdout.startswith("wrote")
    # the shipped .safetensors is preferred over the .onnx (whose batch norms are folded)
    assert out.read_bytes() == (WEIGHTS / "mnv3-unet-portraits-224.safetensors").read_bytes()
    run("export", "--model", "mnv3-unet-portraits-192", "-o", tmp_path / "lite.safetensors")
    assert_clean_error(run("export", "--model", "mnv3-unet-portraits", "-o", out, ok=False),
                       "no model file or built-in model named 'mnv3-unet-portraits'",
                       "mnv3-unet-portraits-224")


def test_eval_and_models_info_take_builtin_names(synth):
    out = run("eval", "--model", "mnv3-unet-portraits-192", "--data", synth / "val").stdout
    assert "fg_iou" in out
    info = run("models", "info", "mnv3-unet-portraits-192").stdout
    assert "model: mnv3_unet" in info and "profiled at: 192x192" in info
    assert "parameters: 890,561" in info  # without the decoder's refine block, as trained


def test_train_init_and_teacher_take_builtin_names(synth, tmp_path):
    from segme.models.loading import read_checkpoint

    proc = run("train", "--model", "mnv3_unet", "--init", "mnv3-unet-portraits-224",
               "--teacher", "mnv3-unet-portraits-192", "--teacher-size", 64, "--data",
               synth / "train", "--size", 32, "--epochs", 1, "--batch", 4, "--workers", 0,
               "--out", tmp_path / "run")
    assert re.search(r"mnv3-unet-portraits-224\.safetensors: (\d+) of \1 tensors copied",
                     proc.stdout), proc.stdout
    config = read_checkpoint(tmp_path / "run/last.pt")["config"]
    assert config["teacher"] == str(WEIGHTS / "mnv3-unet-portraits-192.onnx")  # no .safetensors
    assert_clean_error(run("train", "--model", "mnv3-unet-portraits-192", "--data",
                           synth / "train", ok=False),
                       "--model mnv3_unet --model-arg refine=false --size 192 "
                       "--init mnv3-unet-portraits-192")
    assert_clean_error(run("train", "--model", "mnv3_unet", "--init", "portraits", "--data",
                           synth / "train", ok=False), "built-in model named 'portraits'")


def test_models_list_without_torch_shows_the_builtin_weights(no_torch):
    out = run("models", "list", env=no_torch).stdout
    for name in ("mnv3-unet-portraits-224", "mnv3-unet-portraits-192", "mnv3_unet", "224x224",
                 "192x192", ".safetensors"):
        assert name in out
    assert re.search(r"\.onnx \d+\.\d MB", out)
    assert out.strip().splitlines()[-1] == ("the table of architectures needs torch: "
                                           "pip install 'segme[train]'")
    assert "sinet" not in out


@pytest.mark.parametrize("args, extra", [
    (("train", "--model", "sinet", "--data", "."), "train"),
    (("export", "--model", "mnv3-unet-portraits-224", "-o", "m.onnx"), "export"),
    (("models", "info", "sinet"), "train"),
])
def test_missing_torch_names_the_extra(no_torch, args, extra):
    assert_clean_error(run(*args, ok=False, env=no_torch),
                       f"segme {args[0]}", f"needs torch: pip install 'segme[{extra}]'")


def test_training_logs_have_no_progress_bars_off_a_terminal(synth, tmp_path):
    args = ("train", "--model", "test_tiny", "--data", synth / "train", "--size", 32,
            "--epochs", 1, "--batch", 4, "--workers", 0, "--out", tmp_path / "run")
    quiet = run(*args)  # stderr is a pipe here, as in a log file
    assert "epoch 1: loss" in quiet.stdout and quiet.stderr == ""
    assert "epoch 1/1" in run(*args, "--progress").stderr  # asked for: shown anyway


def test_a_short_demo_run_scores_its_validation(tmp_path):
    """The README's demo (16 steps): batch-norm statistics must have left their start (mean
    0, variance 1), or the model in eval mode calls no pixel a person: fg-IoU 0.00."""
    run("synth", tmp_path / "demo-data")
    out = run("train", "--model", "sinet", "--data", tmp_path / "demo-data/train", "--val",
              tmp_path / "demo-data/val", "--size", 64, "--epochs", 2, "--batch", 8,
              "--workers", 0, "--out", tmp_path / "run").stdout
    scores = [float(s) for s in re.findall(r"val fg-IoU (\d+\.\d+)", out)]
    assert len(scores) == 2 and min(scores) > 20, out


@pytest.mark.skipif(importlib.util.find_spec("litert_torch") is None,
                    reason="litert-torch (the export extra) is not installed")
def test_tflite_export_prints_only_our_own_lines(trained, tmp_path):
    proc = run("export", "--model", trained / "run/best.pt", "-o", tmp_path / "m.tflite")
    assert proc.stderr == ""
    assert proc.stdout.startswith("wrote ") and len(proc.stdout.splitlines()) == 1


@pytest.mark.parametrize("suffix", [".onnx", ".tflite", ".pt", ".safetensors"])
def test_a_broken_model_file_is_one_line_whatever_its_suffix(suffix, tmp_path):
    from PIL import Image

    photo = tmp_path / "in.jpg"
    Image.new("RGB", (16, 16)).save(photo)
    for name, data in (("text", b"hello, not a model\n"), ("noise", os.urandom(3000)),
                       ("empty", b"")):
        model = tmp_path / f"{name}{suffix}"
        model.write_bytes(data)
        assert_clean_error(run("mask", photo, "--model", model, "-o", tmp_path / "out",
                               ok=False), model.name)
    assert not (tmp_path / "out").exists()


def test_train_options_are_the_config_fields_with_their_defaults():
    """`segme train` is built from TrainConfig: every field an option, its default the
    field's, each listed by --help (a new field needs no edit of cli/train.py)."""
    from dataclasses import fields
    from pathlib import Path

    import typer

    from segme.cli.main import app
    from segme.cli.train import config_from
    from segme.train.config import TrainConfig, flag

    command = typer.main.get_command(app).commands["train"]
    options = {p.name: p for p in command.params if p.name != "help"}
    assert list(options) == [f.name for f in fields(TrainConfig)]
    assert all(flag(name) in option.opts for name, option in options.items())
    defaults = {name: option.default for name, option in options.items()}
    got = config_from({**defaults, "model": "test_tiny", "data": [Path("d")]})
    want = TrainConfig(model="test_tiny", data="d")
    for f in fields(TrainConfig):
        assert getattr(got, f.name) == getattr(want, f.name), f.name
    assert want.out == str(Path("runs/test_tiny"))
    text = run("train", "--help", env={**os.environ, "COLUMNS": "200"}).stdout
    listed = {line.strip("│ *").split()[0] for line in text.splitlines()
              if line.strip("│ *").startswith("--")}
    assert {flag(name) for name in options} <= listed
