"""``segme batch``: a photo verb over a catalogue, on Ray (one machine or a cluster)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from segme.cli import _options as opt
from segme.cli._extras import needs_extra


@needs_extra("ray", "segme batch")
def batch(verb: str = typer.Argument(..., help="mask, cutout, replace or blur: what to "
                                     "write for each photo, as the verb of that name.",
                                     show_default=False, metavar="VERB"),
          sources: list[str] = typer.Argument(..., help="Images, folders, globs like "
                                              "'shots/*.jpg', or .parquet / .csv tables "
                                              "listing photo paths in --column.",
                                              show_default=False, metavar="SOURCE"),
          out: str = typer.Option("out", "--out", "-o", help="Output folder (created). Each "
                                  "output is named as `segme VERB` names it; failures are "
                                  "listed in OUT/segme-batch-report.csv."),
          column: str = typer.Option(None, help="Tables: the column of photo paths "
                                     "(relative ones from the table's folder, mirrored "
                                     "under --out)."),
          recursive: bool = opt.RECURSIVE, model: Path = opt.MODEL,
          ray: str = typer.Option(None, "--ray", help="The Ray cluster: auto (the one this "
                                  "machine joined with `ray start`), HOST:PORT or "
                                  "ray://HOST:10001; default: a local one for this run."),
          actors: int = typer.Option(None, min=1, help="Model actors, one session each "
                                     "(default: half the cluster's CPUs)."),
          cpus_per_actor: float = typer.Option(1.0, help="CPUs Ray reserves per actor; its "
                                               "session runs that many threads (at least 1)."),
          upsample: str = opt.UPSAMPLE,
          bg: str = typer.Option(None, help="replace: a colour (name, #rrggbb, r,g,b) or an "
                                 "image file (default: #00b140)."),
          fit: str = typer.Option("fill", help="replace: a background image's fill (crop) "
                                  "or fit (pad)."),
          harmonize: float = typer.Option(0.0, help="replace: colour transfer towards the "
                                          "background, 0..1."),
          strength: float = typer.Option(None, min=0, help="blur: radius in tenths of a "
                                         "percent of the short side (default 15)."),
          edge: float = typer.Option(0.0, help="Smooth-step edge tightening, 0 (off) to 0.45."),
          overwrite: bool = typer.Option(False, help="Write every output again (default: "
                                         "outputs already there are kept: a re-run resumes)."),
          ) -> None:
    """Run mask, cutout, replace or blur over many photos on Ray: decoding in tasks, the
    model in a pool of actors, outputs where `segme VERB` writes them (docs/batch.md)."""
    from rich.progress import Progress

    from segme.batch import run

    notes: list[str] = []
    with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("segmenting", total=None)

        def show(summary) -> None:
            bar.update(task, total=summary.photos, completed=summary.done)

        summary = run(verb, sources, out, model=model, column=column, recursive=recursive,
                      actors=actors, cpus_per_actor=cpus_per_actor, address=ray,
                      upsample=upsample, bg=bg, fit=fit, strength=strength, edge=edge,
                      harmonize=harmonize, overwrite=overwrite, progress=show, notes=notes)
    print(summary.line())
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    for _, error in summary.failures[:10]:
        print(f"skipped: {error}", file=sys.stderr)
    if summary.failed > 10:
        print(f"skipped: {summary.failed - 10} more in {summary.report}", file=sys.stderr)
    if summary.failed:
        raise SystemExit(1)
