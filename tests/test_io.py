import os
import stat

import pytest

from segme.io.files import atomic_output, write_text_atomic
from tests.console import needs_cli, run


def test_atomic_output_replaces_whole_files_with_normal_permissions(tmp_path):
    path = tmp_path / "out.json"
    write_text_atomic(path, "first")
    write_text_atomic(path, "second")
    assert path.read_text() == "second"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


@needs_cli
def test_a_killed_writers_temporary_is_removed_by_the_next_run(tmp_path):
    import signal
    import subprocess
    import sys

    from PIL import Image

    # a writer killed outright (kill -9) mid-write leaves its temporary behind
    code = ("import sys, time; from segme.io.files import atomic_output\n"
            "with atomic_output(sys.argv[1]) as tmp:\n"
            "    tmp.write_bytes(b'half'); print('writing', flush=True); time.sleep(60)\n")

    def writer(name):
        proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / name)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "writing"
        return proc

    killed = writer("a.png")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert [p.name.startswith(".a.png.") for p in tmp_path.glob(".*.tmp")] == [True]
    live = writer("b.png")  # a live writer's temporary is not touched
    try:
        photo = tmp_path / "in.jpg"
        Image.new("RGB", (16, 16), (90, 120, 150)).save(photo)
        run("mask", photo, "-o", tmp_path / "m.png")  # the next run that writes here
        assert [p.name.startswith(".b.png.") for p in tmp_path.glob(".*.tmp")] == [True]
    finally:
        live.kill()
        live.wait()
