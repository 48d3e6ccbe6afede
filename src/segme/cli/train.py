"""``segme train``: train a registered model on a folder of images and masks.

The options are TrainConfig's fields (segme/train/config.py), with the defaults, help and
groups written there: a new field is a new option without an edit here. The checks are
``TrainConfig.check``'s.
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any

import typer

from segme.cli._extras import needs_extra
from segme.cli._options import parse_size
from segme.train.config import TrainConfig, flag

_PYTHON_CONSTANTS = {"True": "true", "False": "false", "None": "null"}


def parse_model_args(items: list[str]) -> dict:
    """``["width=0.75", "decoder=bilinear"]`` -> ``{"width": 0.75, "decoder": "bilinear"}``.

    Values are read as JSON (numbers, true/false; Python's True/False/None too) and fall
    back to plain strings; never eval.
    """
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--model-arg expects KEY=VALUE, got {item!r}")
        value = _PYTHON_CONSTANTS.get(value, value)  # the spelling of the constructor's defaults
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _weights(path: Path | None) -> str | None:
    """A weights file or a built-in model's name -> the file to read."""
    from segme.weights import NETWORK_FILES, resolve_model

    return None if path is None else str(resolve_model(path, NETWORK_FILES))


# the fields written otherwise on the command line: (the option's type, its value -> the
# field's); the others are read as typed, files and folders as paths
FORMS: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "data": (list[Path], lambda v: str(v[0]) if len(v) == 1 else [str(p) for p in v]),
    "size": (str | None, parse_size),
    "model_kwargs": (list[str], parse_model_args),
    "init": (Path | None, _weights),
    "teacher": (Path | None, _weights),
}


def _form(f: Field, hint: Any) -> tuple[Any, Callable[[Any], Any]]:
    """The option's type for field ``f`` (of type ``hint``) and its value -> the field's."""
    if f.name in FORMS:
        return FORMS[f.name]
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else ()
    optional = len(args) == 2 and type(None) in args
    base = next(a for a in args if a is not type(None)) if optional else hint
    if f.metadata.get("path") and base is str:
        return Path | None if optional else Path, lambda v: None if v is None else str(v)
    if typing.get_origin(base) is list:
        return hint, list
    if base in (bool, int, float, str):
        return hint, lambda v: v
    raise TypeError(f"TrainConfig.{f.name}: {hint} has no command-line form; add one to "
                    f"FORMS in {__name__}")


def _options() -> dict[str, tuple[inspect.Parameter, Callable[[Any], Any]]]:
    """Field name -> its option as a parameter of the command, and its value -> the field's."""
    hints = typing.get_type_hints(TrainConfig)
    options = {}
    for f in fields(TrainConfig):
        kind, convert = _form(f, hints[f.name])
        if f.default is not MISSING:
            default = f.default
        else:  # collections are repeated options: empty by default
            default = [] if f.default_factory is not MISSING else ...
        decls = [flag(f.name)]
        if kind in (bool, bool | None):
            decls = [f"{decls[0]}/--no-{decls[0][2:]}"]
        option = typer.Option(default, *decls, help=f.metadata["help"],
                              rich_help_panel=f.metadata["group"] or None,
                              show_default=default not in (None, []))
        parameter = inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                      annotation=kind)
        options[f.name] = parameter, convert
    return options


OPTIONS = _options()


def config_from(values: dict[str, Any]) -> TrainConfig:
    """The TrainConfig of the command's option values (by field name)."""
    return TrainConfig(**{name: convert(values[name]) for name, (_, convert) in OPTIONS.items()})


@needs_extra("train", "segme train")
def train(**values: Any) -> None:
    """Train a model; writes OUT/last.pt, OUT/best.pt, OUT/log.csv and TensorBoard logs."""
    from segme.runtime import builtin_card
    from segme.train.loop import train as run

    model = values["model"]
    card = builtin_card(model)
    if card is not None:
        h, w = card.input_size
        args = "".join(f" --model-arg {k}={json.dumps(v)}" for k, v in card.arch_kwargs.items())
        raise ValueError(f"--model takes an architecture; {model} is built-in weights: train "
                         f"from them with --model {card.arch}{args} --size "
                         f"{h if h == w else f'{h}x{w}'} --init {model}")
    run(config_from(values))


# typer reads the options from the signature
train.__signature__ = inspect.Signature([p for p, _ in OPTIONS.values()])
train.__annotations__ = {name: p.annotation for name, (p, _) in OPTIONS.items()}
