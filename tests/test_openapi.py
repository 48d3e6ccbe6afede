"""The HTTP API's OpenAPI document against the server itself: schemathesis (property-based
testing from the document) runs every one of its checks on a real `segme serve`.

Requests the document allows must be served (2xx), requests it forbids refused (4xx, never
a 5xx), and every answer must have a status, a content type and, for JSON, a body that the
document declares for it; no warning either (e.g. that an operation rejects most of what
the document allows). The document says an upload is an image; tests/schemathesis_hooks.py
gives schemathesis small random images for each media type it names. The run is bounded
(examples per operation, a fixed seed: reproducible; `st run ... --seed N` explores more).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
schemathesis_config = pytest.importorskip("schemathesis.config",
                                          reason="schemathesis is not installed (the dev extra)")

from tests.test_serve import SEGME, serving  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = 200  # per operation and phase: about 20 s on two busy cores
SEED = 2026


@pytest.mark.skipif(SEGME is None, reason="the segme console script is not installed")
def test_every_schemathesis_check_passes(tmp_path):
    warnings = [w.value for w in schemathesis_config.SchemathesisWarning]
    config = tmp_path / "schemathesis.toml"
    # every warning fails the run; nothing is kept between runs (no crash cache, no database)
    config.write_text(f"[warnings]\ndisplay = {warnings!r}\nfail-on = true\n\n"
                      "[cache]\nenabled = false\n")
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with serving("--workers", 2, "--threads", 1) as (url, _):
        proc = subprocess.run(
            [sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()",
             "--config-file", str(config), "--no-color", "run", f"{url}/openapi.json",
             "--checks", "all", "--max-examples", str(EXAMPLES), "--seed", str(SEED),
             "--generation-database", "none",
             "--workers", "2", "--request-timeout", "30", "--continue-on-failure"],
            capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "No issues found" in out and "7 selected / 7 total" in out, out[-3000:]
