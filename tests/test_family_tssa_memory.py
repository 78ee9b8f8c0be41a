"""TSSA is linear in the number of tokens: one layer on 32,768 tokens, forward and backward, within 2 GB.

How it is measured: a fresh Python process (so that no other test's memory counts) builds one TSSA layer
(d = 384, 6 heads of 64, ToST-S-like width), runs a warm-up at 64 tokens (thread pools, kernel caches), reads its peak
resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``), then runs forward and backward on a (1, 32768,
384) input and reads the peak again. The growth of the peak bounds every allocation of the large pass. One float32
N × N matrix at N = 32,768 alone would take 4 GiB, so staying under 2 GB also shows that none is formed.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
LIMIT = 2 * 1024**3

SCRIPT = r"""
import resource, torch
torch.manual_seed(0)
torch.set_num_threads(2)
from srr.operators import TSSA
n, d = 32768, 384
layer = TSSA(d, heads=6, dim_head=64)
layer(torch.randn(1, 64, d, requires_grad=True)).square().mean().backward()
x = torch.randn(1, n, d, requires_grad=True)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = layer(x)
out.square().mean().backward()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert out.shape == (1, n, d) and torch.isfinite(x.grad).all()
print((peak - base) * 1024, float(out.abs().mean()))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss is in KiB on Linux only")
def test_one_tssa_layer_on_32768_tokens_within_2_gb():
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    growth, mean_abs = result.stdout.split()
    growth = int(growth)
    print(f"peak RSS growth of one TSSA layer, forward + backward, N = 32768, d = 384: {growth / 2**20:.0f} MiB")
    assert 0 < growth < LIMIT
    assert float(mean_abs) > 0
