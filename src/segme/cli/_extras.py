"""Missing optional dependencies: the pip command of the extra that installs them."""

from __future__ import annotations

import functools
from collections.abc import Callable


def install_hint(e: ModuleNotFoundError, extra: str, what: str) -> str:
    """``No module named 'torch'`` -> ``WHAT needs torch: pip install 'segme[EXTRA]'``."""
    return f"{what} needs {e.name.partition('.')[0]}: pip install 'segme[{extra}]'"


def needs_extra(extra: str, what: str) -> Callable[[Callable], Callable]:
    """Decorate a verb: a third-party module it cannot import ends the verb in ImportError
    with the pip command of ``extra`` (the CLI prints it as one line), not in Python's bare
    ``No module named ...``."""

    def decorate(verb: Callable) -> Callable:
        @functools.wraps(verb)
        def run(*args, **kwargs):
            try:
                return verb(*args, **kwargs)
            except ModuleNotFoundError as e:
                if not e.name or e.name.partition(".")[0] == "segme":  # a bug, not an extra
                    raise
                raise ImportError(install_hint(e, extra, what)) from None

        return run

    return decorate
