"""The ``segme`` console script: one verb per job, each in its own file.

User mistakes (bad paths, bad files, bad options) end in one line on stderr and exit code 2,
never a traceback.
"""

from __future__ import annotations

import sys

import typer

from segme._version import __version__
from segme.cli import batch as batch_cli
from segme.cli import bench as bench_cli
from segme.cli import blur as blur_cli
from segme.cli import cutout as cutout_cli
from segme.cli import data as data_cli
from segme.cli import demo as demo_cli
from segme.cli import eval as eval_cli
from segme.cli import eval_video as eval_video_cli
from segme.cli import export as export_cli
from segme.cli import mask as mask_cli
from segme.cli import models as models_cli
from segme.cli import replace as replace_cli
from segme.cli import serve as serve_cli
from segme.cli import train as train_cli

app = typer.Typer(
    help="segme: person segmentation for photos, videos and live camera feeds.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def show_version(value: bool) -> None:
    """``--version``: print ``segme X.Y.Z`` and stop before any verb."""
    if value:
        print(f"segme {__version__}")
        raise typer.Exit()


@app.callback()
def options(
    version: bool = typer.Option(False, "--version", "-V", is_eager=True, callback=show_version,
                                 help="Print the version and exit."),
) -> None:
    """Options before the verb; the help text is the app's."""


app.command("demo")(demo_cli.demo)
app.command("cutout")(cutout_cli.cutout)
app.command("replace")(replace_cli.replace)
app.command("blur")(blur_cli.blur)
app.command("mask")(mask_cli.mask)
app.command("batch")(batch_cli.batch)
app.command("bench")(bench_cli.bench)
app.add_typer(models_cli.app, name="models")
app.command("train")(train_cli.train)
app.command("eval")(eval_cli.evaluate)
app.command("eval-video")(eval_video_cli.eval_video)
app.command("export")(export_cli.export)
app.command("synth")(data_cli.synth)
app.command("backgrounds")(data_cli.backgrounds)
app.command("serve")(serve_cli.serve)

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError, ImportError,
               OSError)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except USER_ERRORS as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
