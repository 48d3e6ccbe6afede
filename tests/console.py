"""Running the real ``segme`` console script from tests, and checking its one-line errors."""

import os
import shutil
import subprocess
import sys

import pytest

# the script beside this interpreter first: `venv/bin/python -m pytest` without activating the
# venv must not run another environment's segme from PATH
SEGME = shutil.which("segme", path=os.path.dirname(sys.executable)) or shutil.which("segme")
needs_cli = pytest.mark.skipif(SEGME is None, reason="the segme console script is not installed")


def run(*args, ok=True, env=None):
    proc = subprocess.run([SEGME, *map(str, args)], capture_output=True, text=True, timeout=600,
                          env=env)
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def assert_clean_error(proc, *words):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def stop(proc: subprocess.Popen) -> None:
    """End a server started by a test: SIGTERM, then SIGKILL after 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
