import os

import pytest

# Tests run with one intra-op thread: deterministic kernels and no oversubscription on 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture(autouse=True)
def _one_thread():
    try:
        import torch
    except ImportError:
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A synthetic data set and a tiny model trained on it for one epoch by the real console
    script: ``data/{train,val}`` and ``run/{best,last}.pt`` under the returned folder."""
    from tests.console import run

    root = tmp_path_factory.mktemp("cli")
    run("synth", root / "data", "--train", 12, "--val", 6)
    run("train", "--model", "test_tiny", "--data", root / "data/train", "--val", root / "data/val",
        "--size", 32, "--epochs", 1, "--batch", 4, "--workers", 0, "--out", root / "run",
        "--no-progress")
    return root


def shared_data(*parts: str) -> str:
    """Path inside ../shared/data, or skip the test with a clear reason when it is absent."""
    path = os.path.join(SHARED, *parts)
    if not os.path.exists(path):
        pytest.skip(f"real data not available: {os.path.normpath(path)} is missing")
    return path
