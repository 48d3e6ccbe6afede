"""How long a fresh ``pip install -e ".[EXTRA]"`` takes, one new virtual environment per extra.

For each extra named on the command line: a new venv in a temporary folder, ``pip install -U
pip`` in it (the pip a new user gets), then ``pip install -e "<repo>[EXTRA]"``, timed. Prints a
Markdown table: the install's seconds, whether it succeeded (else pip's last error line, such
as ``resolution-too-deep``), how often pip's resolver said it was walking back through the
versions of a package ("looking at multiple versions of ..."; 0 is a straight resolution) and
how many packages ended up in the venv. ``base`` is the plain install, no extra.

    python benchmarks/install_time.py dev            # what CI and the README run
    python benchmarks/install_time.py base export serve dev --no-cache

Each install downloads what pip's cache lacks (``--no-cache`` times a cold machine). Every
venv is deleted afterwards; ``--timeout`` bounds each install.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKTRACK = re.compile(r"pip is looking at multiple versions of (\S+)")


def run(cmd: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def install(extra: str, python: str, pip_spec: str, no_cache: bool, timeout: float) -> dict:
    """One extra in a new venv: seconds, outcome, backtracked packages, package count."""
    with tempfile.TemporaryDirectory(prefix="segme-install-") as tmp:
        venv = Path(tmp) / "venv"
        run([python, "-m", "venv", str(venv)]).check_returncode()
        vpy = str(venv / "bin" / "python")
        cache = ["--no-cache-dir"] if no_cache else []
        up = run([vpy, "-m", "pip", "install", "-q", "-U", pip_spec, *cache])
        if up.returncode:
            raise RuntimeError(f"upgrading pip failed:\n{up.stderr[-2000:]}")
        version = run([vpy, "-m", "pip", "--version"]).stdout.split()[1]
        target = str(ROOT) if extra == "base" else f"{ROOT}[{extra}]"
        t0 = time.perf_counter()
        try:
            proc = run([vpy, "-m", "pip", "install", *cache, "-e", target], timeout)
            seconds = time.perf_counter() - t0
            out = proc.stdout + proc.stderr
            if proc.returncode:
                lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
                errors = [ln for ln in lines if ln.startswith("error:") or "ERROR" in ln]
                outcome = "failed: " + (errors or lines or ["?"])[-1][:80]
            else:
                outcome = "ok"
        except subprocess.TimeoutExpired as e:
            seconds = time.perf_counter() - t0
            out = e.stdout or ""  # bytes on POSIX: the output read before the kill
            out = out.decode(errors="replace") if isinstance(out, bytes) else out
            outcome = f"timed out after {timeout:.0f} s"
        # pip also names the project's own nested extras (dev = segme[train,...]): not a walk
        walked = sorted({n for n in BACKTRACK.findall(out) if not n.startswith("segme[")})
        listed = run([vpy, "-m", "pip", "list", "--format=freeze"]).stdout.split()
    return {"extra": extra, "pip": version, "seconds": seconds, "outcome": outcome,
            "walked": walked, "packages": len(listed)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("extras", nargs="*", default=["dev"],
                    help="extras to time, each in its own new venv ('base': no extra)")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter that makes the venvs (default: this one)")
    ap.add_argument("--pip", default="pip",
                    help="what `pip install -U` installs first (default: the newest pip)")
    ap.add_argument("--no-cache", action="store_true",
                    help="pass --no-cache-dir: download everything, as a new machine would")
    ap.add_argument("--timeout", type=float, default=1200, help="seconds per install")
    args = ap.parse_args()

    pyver = run([args.python, "-c", "import platform; print(platform.python_version())"])
    rows = []
    for extra in args.extras:
        print(f"installing .[{extra}] ...", file=sys.stderr, flush=True)
        rows.append(install(extra, args.python, args.pip, args.no_cache, args.timeout))
    pips = sorted({r["pip"] for r in rows})
    print(f"\npip {', '.join(pips)}, Python {pyver.stdout.strip()}, "
          f"{'cold (--no-cache-dir)' if args.no_cache else 'pip cache as found'}\n")
    print("| extra | seconds | result | walked back through | packages |")
    print("|---|---:|---|---|---:|")
    for r in rows:
        walked = ", ".join(r["walked"]) if r["walked"] else "-"
        print(f"| {r['extra']} | {r['seconds']:.0f} | {r['outcome']} | {walked} "
              f"| {r['packages']} |")
    if any(r["outcome"] != "ok" for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
