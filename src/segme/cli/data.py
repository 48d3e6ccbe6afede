"""``segme synth`` (a small synthetic dataset for demos and smoke tests) and ``segme
backgrounds`` (photos without people to composite training scenes onto)."""

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


def backgrounds(
    out: Path = typer.Argument(..., help="Folder to write the background photos into."),
    photos: list[Path] = typer.Option(
        [], "--from", help="A labelled folder (images/ + masks/): its photos with the person "
        "inpainted out (repeat for several)."),
    max_person: float = typer.Option(
        0.5, min=0.0, max=1.0, help="Skip photos whose person covers more of the frame than "
        "this: they would be mostly fill."),
    debian: bool = typer.Option(
        False, help="Also download Debian's wallpaper packages (apt-get download; needs the "
        "network) and keep their photographs."),
) -> None:
    """Photos without people for --backgrounds and --scenes of segme train."""
    from segme.data.backgrounds import write_backgrounds
    from segme.data.folders import find_pairs

    if not photos and not debian:
        raise ValueError("nothing to do: give --from FOLDER (labelled photos) and/or --debian")
    for folder in photos:
        written, skipped = write_backgrounds(find_pairs(folder), out, max_person)
        print(f"{folder}: {written} backgrounds written, {skipped} photos skipped (the person "
              f"covers more than {max_person:.0%})")
    if debian:
        from segme.data.wallpapers import debian_wallpapers

        kept = debian_wallpapers(out)
        print(f"Debian wallpapers: {sum(v for v in kept.values() if isinstance(v, int))} "
              f"photographs written ({', '.join(f'{k} {v}' for k, v in kept.items())})")
