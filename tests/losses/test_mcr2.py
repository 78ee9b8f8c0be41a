"""MCR² loss: value and gradient against an independent float64 computation; exactness under a 2-process gloo run."""
import json
import math

import pytest
import torch
import torch.multiprocessing as mp

import srr
from srr.errors import ConfigError, NonFiniteError
from srr.losses import MCR2

D64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def reference(z, pi, eps2, g1, g2):
    """Official MCR² in float64 with ε² as ``eps2``: the value and the closed-form gradient with respect to Z."""
    m, d = z.shape
    eye = torch.eye(d, dtype=D64)
    a = d / (m * eps2)
    big = eye + g1 * a * z.T @ z
    value = -g2 * 0.5 * torch.logdet(big)
    grad = -g2 * g1 * a * z @ torch.linalg.inv(big)
    for k in range(pi.shape[1]):
        w = pi[:, k]
        tr = w.sum()
        ak = d / (tr * eps2)
        mk = eye + ak * z.T @ (w[:, None] * z)
        value = value + tr / (2 * m) * torch.logdet(mk)
        grad = grad + tr / m * ak * (w[:, None] * z) @ torch.linalg.inv(mk)
    return value, grad


@pytest.mark.parametrize("soft", [False, True])
def test_value_and_gradient_match_independent_float64(soft):
    g = torch.Generator().manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(50, 6, generator=g, dtype=D64), dim=1)
    y = torch.arange(50) % 4
    pi = torch.softmax(torch.randn(50, 4, generator=g, dtype=D64), 1) if soft else torch.eye(4, dtype=D64)[y]
    eps2, g1, g2 = 0.5, 2.5, 0.7
    loss = MCR2(eps=math.sqrt(eps2), gamma1=g1, gamma2=g2)
    zg = z.clone().requires_grad_(True)
    value = loss(zg, pi if soft else y)
    (grad,) = torch.autograd.grad(value, zg)
    ref_value, ref_grad = reference(z, pi, eps2, g1, g2)
    assert abs(float(value.detach()) - float(ref_value)) < 1e-8
    assert float((grad - ref_grad).abs().max()) < 1e-8


def test_defaults_are_minus_rate_reduction_and_terms():
    z = torch.nn.functional.normalize(torch.randn(64, 8, dtype=D64), dim=1)
    y = torch.randint(0, 3, (64,))
    crit = MCR2(eps=0.5)
    terms = crit.terms(z, y)
    dr = srr.rate_reduction(z, y, eps=0.5)
    assert torch.allclose(terms["loss"], -dr, atol=1e-10) and torch.allclose(terms["delta_R"], dr, atol=1e-10)
    assert torch.allclose(terms["R"], srr.coding_rate(z, 0.5), atol=1e-10)
    assert abs(MCR2().eps - math.sqrt(0.5)) < 1e-15  # the official --eps 0.5 is ε² = 0.5
    # γ₁ changes R inside the logdet only; delta_R stays the theoretical ΔR
    t2 = MCR2(eps=0.5, gamma1=3.0).terms(z, y)
    assert float(t2["R"]) > float(terms["R"]) and torch.allclose(t2["delta_R"], dr, atol=1e-10)


def test_empty_class_contributes_zero_and_errors():
    z = torch.nn.functional.normalize(torch.randn(20, 4, dtype=D64), dim=1)
    y = torch.zeros(20, dtype=torch.long)
    with_empty = MCR2(eps=0.5, num_classes=3)(z, y)
    assert torch.allclose(with_empty, MCR2(eps=0.5)(z, y))
    with pytest.raises(ConfigError, match="out of range"):
        MCR2(num_classes=2)(z, torch.full((20,), 2))
    with pytest.raises(ConfigError, match=r"\(m, d\)"):
        MCR2()(z[None], y)
    with pytest.raises(NonFiniteError):
        MCR2()(z * float("nan"), y)
    with pytest.raises(ConfigError, match="not ε²|positive"):
        MCR2(eps=-1.0)


def _worker(rank, world, init, x, y, w0, out_dir):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        enc = torch.nn.Linear(x.shape[1], w0.shape[0], bias=False).double()
        with torch.no_grad():
            enc.weight.copy_(w0)
        half = len(x) // world
        xs, ys = x[rank * half:(rank + 1) * half], y[rank * half:(rank + 1) * half]
        z = torch.nn.functional.normalize(enc(xs), dim=1)
        loss = MCR2(eps=0.6, gamma1=1.5)(z, ys)  # no num_classes: K is agreed on by all-reducing the largest label
        loss.backward()
        grad = enc.weight.grad.clone()
        dist.all_reduce(grad)  # what DistributedDataParallel does: average the gradients
        grad /= world
        with open(f"{out_dir}/rank{rank}.json", "w") as fh:
            json.dump({"loss": float(loss), "grad": grad.flatten().tolist()}, fh)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_gloo_equals_single_process(tmp_path):
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 10, generator=g, dtype=D64)
    y = torch.cat([torch.randint(0, 3, (24,), generator=g), torch.randint(0, 4, (24,), generator=g)])
    y[30] = 3  # class 3 only on the second process
    w0 = torch.randn(5, 10, generator=g, dtype=D64)
    mp.spawn(_worker, args=(2, f"file://{tmp_path}/store", x, y, w0, str(tmp_path)), nprocs=2, join=True)
    enc = torch.nn.Linear(10, 5, bias=False).double()
    with torch.no_grad():
        enc.weight.copy_(w0)
    loss = MCR2(eps=0.6, gamma1=1.5)(torch.nn.functional.normalize(enc(x), dim=1), y)
    loss.backward()
    loss = loss.detach()
    for r in range(2):
        res = json.loads((tmp_path / f"rank{r}.json").read_text())
        assert abs(res["loss"] - float(loss)) < 1e-6
        assert float((torch.tensor(res["grad"], dtype=D64) - enc.weight.grad.flatten()).abs().max()) < 1e-6
    # a single half batch gives a different value: the reduction is what makes it exact
    with torch.no_grad():
        half = MCR2(eps=0.6, gamma1=1.5)(torch.nn.functional.normalize(enc(x[:24]), dim=1), y[:24])
    assert abs(float(half) - float(loss)) > 1e-3


def test_corrupt_labels_redraws_the_requested_fraction():
    from srr.data import corrupt_labels
    from srr.errors import DataError

    y = torch.arange(1000) % 10
    noisy = corrupt_labels(y, 0.3, 10, seed=1)
    wrong = float((noisy != y).double().mean())
    assert 0.24 < wrong < 0.30  # 300 redrawn, about 1/10 of them land on the true label again
    assert torch.equal(noisy, corrupt_labels(y, 0.3, 10, seed=1)) and torch.equal(corrupt_labels(y, 0.0), y)
    assert int(noisy.min()) >= 0 and int(noisy.max()) <= 9
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        corrupt_labels(y, 1.5)
