"""``segme synth``: write a small synthetic dataset (for demos and smoke tests)."""

from __future__ import annotations

from pathlib import Path

import typer


def synth(
    out: Path = typer.Argument(..., help="Folder to create (train/ and val/ inside)."),
    train: int = typer.Option(64, min=1, help="Training pairs."),
    val: int = typer.Option(16, min=1, help="Validation pairs."),
    seed: int = typer.Option(0),
) -> None:
    """Drawn head-and-shoulders figures on textured backgrounds, with exact masks."""
    from segme.data.synthetic import make_synthetic_dataset

    make_synthetic_dataset(out, n_train=train, n_val=val, seed=seed)
    print(f"wrote {train} training and {val} validation pairs to {out}")
