import contextlib
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "helpers"))  # shared test helpers: `from paths import ROOT`

from paths import SHARED_DATA  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def mnist_dir():
    d = SHARED_DATA / "mnist"
    if not (d / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"the shared MNIST test set is not at {d}")
    return d


@contextlib.contextmanager
def torch_threads(n: int):
    """torch's intra-op thread count set to ``n`` for the block, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    """One torch thread for the test: small matrices run faster, and OpenMP cannot spin when the cores are shared."""
    with torch_threads(1):
        yield


@pytest.fixture
def two_threads():
    """Two torch threads for the test (the code paths that use several threads), whatever the machine's default."""
    with torch_threads(2):
        yield


def pytest_terminal_summary(terminalreporter):
    """One line with the counts of the reliability tests (property inputs, bad-input cases), when they ran."""
    from reliability_counts import COUNTS

    if COUNTS:
        terminalreporter.write_line("reliability: " + ", ".join(f"{k}={v}" for k, v in sorted(COUNTS.items())))
