"""The user documentation is true: its examples run and its commands exist.

- Every ```python block of docs/quickstart.md and docs/python-api.md runs, a page's blocks in
  order in one namespace, in a folder holding the files the pages name (``photo.jpg``,
  ``beach.jpg``, ``clip.mp4``, ``shots/``, ``inbox/``), with the built-in models only.
- Every ``segme ...`` command of docs/cli.md and docs/quickstart.md (code blocks and inline
  code) names a real verb, and every option it uses is in that verb's ``--help``.
- The photo commands of the quick start run for real through the console script and
  succeed; ```console blocks (``$ segme ...`` then its output) run and print what they show.

A block after ``<!-- not run: REASON -->`` (a camera, a Ray cluster) is only read.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.console import SEGME, needs_cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RUN_PAGES = ("quickstart.md", "python-api.md")  # their python blocks run
COMMAND_PAGES = ("cli.md", "quickstart.md")  # their segme commands are checked
RUN_VERBS = ("cutout", "replace", "blur", "mask")  # cheap: run on the test photo
NOT_RUN = re.compile(r"<!--\s*not run:[^>]*-->")
FENCE = re.compile(r"^```(\w*)\s*$")
SPLIT = {"|", "||", "&", "&&", ";", "(", ")", "<", ">", ">>"}


# reading the pages --------------------------------------------------------------------------

def blocks(text: str) -> list[tuple[str, str, int, bool]]:
    """(language, code, line of the opening fence, marked not run) of each fenced block."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or not m.group(1):
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        before = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
        out.append((m.group(1), "\n".join(body), start + 1, bool(NOT_RUN.search(before))))
        i += 1
    return out


def shell_commands(script: str) -> list[list[str]]:
    """The argument lists of the ``segme`` commands in a shell script (continuation lines
    joined, comments, pipes, ``&&`` and redirections taken apart)."""
    out = []
    for line in script.replace("\\\n", " ").splitlines():
        lex = shlex.shlex(line, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        tokens, segment, skip = list(lex), [], False
        for tok in [*tokens, ";"]:
            if skip:  # a redirection's target
                skip = False
            elif tok in SPLIT:
                if segment[:1] == ["segme"]:
                    out.append(segment[1:])
                segment, skip = [], tok in (">", ">>", "<")
            else:
                segment.append(tok)
    return out


def console_runs(script: str) -> list[tuple[list[str], list[str]]]:
    """``$ segme ...`` lines of a console block, each with the output lines shown after it."""
    runs: list[tuple[list[str], list[str]]] = []
    for line in script.splitlines():
        if line.startswith("$ "):
            runs.extend((args, []) for args in shell_commands(line[2:]))
        elif runs and line.strip():
            runs[-1][1].append(line.strip())
    return runs


def page_commands(text: str) -> list[list[str]]:
    """Every segme command of a page: in bash and console blocks, and in inline code."""
    out = []
    for lang, code, _, _ in blocks(text):
        if lang in ("bash", "sh", "shell"):
            out += shell_commands(code)
        elif lang == "console":
            out += [args for args, _ in console_runs(code)]
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    for span in re.findall(r"`([^`\n]+)`", prose):
        span = span.replace("\\|", "|")
        if re.match(r"(.*\|\s*)?segme( |$)", span):
            out += shell_commands(span)
    return out


# checking commands ----------------------------------------------------------------------------

@functools.cache
def help_text(*verb: str) -> str:
    proc = subprocess.run([SEGME, *verb, "--help"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "250"})
    assert proc.returncode == 0, f"`segme {' '.join(verb)}` is not a verb: {proc.stderr[-500:]}"
    return proc.stdout


def verb_of(args: list[str]) -> tuple[str, ...]:
    if not args or args[0].startswith("-"):
        return ()
    return tuple(args[:2]) if args[0] == "models" and len(args) > 1 else (args[0],)


def check_command(args: list[str]) -> None:
    """AssertionError unless ``segme ARGS`` names a real verb and only options it takes."""
    verb = verb_of(args)
    text = help_text(*verb)
    for tok in args[len(verb):]:
        if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", tok):
            name = tok.split("=")[0]
            assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), \
                f"`segme {' '.join(args)}`: {' '.join(('segme', *verb))} has no option {name}"


def runnable(args: list[str]) -> bool:
    """A photo verb on local files: no camera index, no address."""
    if verb_of(args)[:1] not in [(v,) for v in RUN_VERBS]:
        return False
    for before, tok in zip(["", *args], args):
        if tok.startswith(("http://", "https://")) or (tok.isdigit() and not before.startswith("-")):
            return False
    return True


# the folder the examples run in ---------------------------------------------------------------

@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """photo.jpg (scikit-image's astronaut), beach.jpg, shots/ (two photos), inbox/ (two
    photos and an empty file) and clip.mp4 (a few frames of the photo, with PyAV)."""
    data = pytest.importorskip("skimage.data")
    from segme.io.images import write_image

    root = tmp_path_factory.mktemp("docs")
    photo = data.astronaut()
    write_image(root / "photo.jpg", photo)
    write_image(root / "beach.jpg", data.coffee())
    for name in ("shots/a.jpg", "shots/b.png", "inbox/a.jpg", "inbox/b.jpg"):
        (root / name).parent.mkdir(exist_ok=True)
        write_image(root / name, photo[:, ::-1] if name.endswith("b.png") else photo)
    (root / "inbox/empty.jpg").write_bytes(b"")
    try:
        from fractions import Fraction

        from segme.io.video import write_video

        small = photo[::4, ::4]
        write_video([np.roll(small, 3 * i, axis=1) for i in range(8)], root / "clip.mp4",
                    Fraction(25))
    except ImportError:  # no PyAV: the video examples are left out below
        pass
    return root


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


# the tests ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", RUN_PAGES)
def test_python_blocks_run(name, folder, monkeypatch):
    if name == "python-api.md":  # videos, PyTorch models and the server's test client
        for module in ("av", "torch", "fastapi", "httpx"):
            pytest.importorskip(module)
    monkeypatch.chdir(folder)
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    for lang, code, line, not_run in blocks(page(name)):
        if lang != "python" or not_run:
            continue
        exec(compile("\n" * (line) + code, str(DOCS / name), "exec"), namespace)
        ran += 1
    assert ran >= 1


@needs_cli
@pytest.mark.parametrize("name", COMMAND_PAGES)
def test_commands_use_real_verbs_and_options(name):
    commands = page_commands(page(name))
    assert len(commands) >= 10
    with ThreadPoolExecutor(4) as pool:  # every verb's --help, fetched once and in parallel
        list(pool.map(lambda v: help_text(*v), {verb_of(a) for a in commands}))
    for args in commands:
        check_command(args)


@needs_cli
def test_the_checker_catches_mistakes():
    check_command(["blur", "photo.jpg", "--strength", "25", "-o", "out/"])
    with pytest.raises(AssertionError, match="no option --strenght"):
        check_command(["blur", "photo.jpg", "--strenght", "25"])
    with pytest.raises(AssertionError, match="not a verb"):
        check_command(["blurr", "photo.jpg"])
    assert shell_commands("cat a.jpg | segme cutout - -o - > b.png  # c") == \
        [["cutout", "-", "-o", "-"]]


@needs_cli
def test_photo_commands_run(folder):
    """The quick start's photo commands succeed; console blocks print what they show."""
    have_video = (folder / "clip.mp4").exists()
    runs: list[tuple[list[str], list[str] | None]] = []
    for lang, code, _, not_run in blocks(page("quickstart.md")):
        if lang == "bash" and not not_run:
            runs += [(args, None) for args in shell_commands(code)]
    for name in COMMAND_PAGES:
        for lang, code, _, not_run in blocks(page(name)):
            if lang == "console" and not not_run:
                runs += console_runs(code)
    runs = [(a, shown) for a, shown in runs if runnable(a)
            and (have_video or not any(t.endswith(".mp4") for t in a))]
    assert len(runs) >= 8
    for args, shown in runs:
        proc = subprocess.run([SEGME, *args], cwd=folder, capture_output=True, text=True,
                              timeout=300)
        said = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines()]
        if shown is None:
            assert proc.returncode == 0, (args, proc.stderr[-2000:])
        for line in shown or []:
            assert line in said, (args, line, said)


def test_not_run_marks_sit_on_blocks_and_links_resolve():
    for name in (*RUN_PAGES, *COMMAND_PAGES):
        lines = page(name).splitlines()
        for i, ln in enumerate(lines):
            if NOT_RUN.search(ln):
                after = next((x for x in lines[i + 1:] if x.strip()), "")
                assert after.startswith("```"), f"{name}:{i + 1}: the mark is on no block"
    for path in (DOCS / "quickstart.md", DOCS / "cli.md", DOCS / "python-api.md",
                 ROOT / "README.md"):
        for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", path.read_text()):
            if "://" not in target:
                assert (path.parent / target).is_file(), f"{path.name}: broken link {target}"
