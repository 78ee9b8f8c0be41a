"""TSSA is linear in the number of tokens: one layer on 32,768 tokens, forward and backward, within 2 GB.

How it is measured: a fresh Python process (so that no other test's memory counts; glibc told to mmap every block
≥ 64 KiB, ``srr.profiling.MMAP_ENV``) builds one TSSA layer (d = 384, 6 heads of 64, ToST-S-like width), runs a
warm-up at 64 tokens (thread pools, kernel caches), allocates a (1, 32768, 384) input, and measures forward and
backward with :func:`srr.profiling.peak_rss_growth`: the kernel's resident-set high-water mark, reset just before the
pass, minus the resident set before it — every byte the pass held at its peak, whatever allocated it. One float32
N × N matrix at N = 32,768 alone would take 4 GiB, so staying under 2 GB also shows that none is formed.
"""
import os
import subprocess
import sys

import pytest

from paths import SRC
LIMIT = 2 * 1024**3

SCRIPT = r"""
import torch
torch.manual_seed(0)
torch.set_num_threads(1)
from srr.operators import TSSA
from srr.profiling import peak_rss_growth
n, d = 32768, 384
layer = TSSA(d, heads=6, dim_head=64)
layer(torch.randn(1, 64, d, requires_grad=True)).square().mean().backward()
x = torch.randn(1, n, d, requires_grad=True)

def step():
    out = layer(x)
    out.square().mean().backward()
    return out.shape, float(out.detach().abs().mean())

growth, (shape, mean_abs) = peak_rss_growth(step)
assert shape == (1, n, d) and torch.isfinite(x.grad).all()
print(growth, mean_abs)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the peak-memory probe reads /proc (Linux)")
@pytest.mark.slow
def test_one_tssa_layer_on_32768_tokens_within_2_gb():
    from srr.profiling import MMAP_ENV

    env = {**os.environ, **MMAP_ENV, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    growth, mean_abs = result.stdout.split()
    growth = int(growth)
    print(f"peak RSS growth of one TSSA layer, forward + backward, N = 32768, d = 384: {growth / 2**20:.0f} MiB")
    assert 100 * 2**20 < growth < LIMIT  # w alone is 48 MiB; the pass holds several such tensors
    assert float(mean_abs) > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the peak-memory probe reads /proc (Linux)")
def test_peak_rss_growth_sees_a_freed_64_mib_tensor():
    import torch

    from srr.profiling import peak_rss_growth

    def make_and_drop():
        t = torch.ones(16 * 2**20)  # 64 MiB, touched, freed on return
        return float(t[-1])

    growth, value = peak_rss_growth(make_and_drop)
    assert value == 1.0 and 62 * 2**20 <= growth < 160 * 2**20  # the kernel's counters lag by up to ~1 MiB
