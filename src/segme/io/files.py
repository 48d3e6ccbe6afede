"""Output files that are never half-written: write to a temporary name, then rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()  # what open() would have given the file


_swept: set[str] = set()  # folders already cleared of dead runs' temporary files


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sweep_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files that ``atomic_output`` left in ``folder`` in a run that
    was killed (``kill -9``, power loss): ``.NAME.PID.XXXX.tmp`` whose process no longer
    runs. Once per folder and process; returns what it removed."""
    folder = Path(folder)
    key = str(folder.resolve())
    if key in _swept:
        return []
    _swept.add(key)
    removed = []
    for p in folder.glob(".*.tmp"):
        parts = p.name.split(".")
        pid = parts[-3] if len(parts) >= 5 else ""
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            try:
                p.unlink()
                removed.append(p)
            except OSError:  # gone already, or not ours to remove
                pass
    return removed


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed over ``path``.

    A crash or an exception while writing leaves any previous file at ``path`` untouched
    and no temporary file behind (rename is atomic on POSIX within one folder). The
    temporary name carries the writer's process id, so that the temporaries of a run that
    was killed outright are removed by the next one that writes into the folder.
    """
    path = Path(path)
    sweep_stale_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _MODE)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a text file through ``atomic_output``."""
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def write_csv_atomic(path: str | Path, rows: list[dict]) -> None:
    """Write rows that share their keys as CSV (header first, floats to 4 decimals) through
    ``atomic_output``."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in r.items()}
                     for r in rows)
    write_text_atomic(path, buf.getvalue())
