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


def shared_data(*parts: str) -> str:
    """Path inside ../shared/data, or skip the test with a clear reason when it is absent."""
    path = os.path.join(SHARED, *parts)
    if not os.path.exists(path):
        pytest.skip(f"real data not available: {os.path.normpath(path)} is missing")
    return path
