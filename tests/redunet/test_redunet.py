"""ReduNet: one layer against an independent implementation of REFERENCE §6, the FFT form against the
block-circulant operator, exact shift invariance, ΔR rising layer by layer, save/load."""
import math

import pytest
import torch

import srr
import srr.analysis
from srr.data import load_data, mixture_of_subspaces
from srr.errors import CheckpointError, ConfigError, DataError
from srr.redunet import ReduLayer, ReduNet, block_circulant_operator, circulant_matrix

D64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def unit(x):
    return x / x.flatten(1).norm(dim=1).view(-1, *([1] * (x.dim() - 1)))


def reference_step(z_train, y_train, x, num_classes, eta, eps2, lam):
    """REFERENCE §6 written out directly, with eps2 = ε² as the official code takes it (float64)."""
    m, d = z_train.shape
    eye = torch.eye(d, dtype=D64)
    a = d / (m * eps2)
    e = a * torch.linalg.inv(eye + a * z_train.T @ z_train)
    out_c, gam = [], []
    for j in range(num_classes):
        zj = z_train[y_train == j]
        aj = d / (len(zj) * eps2)
        out_c.append(aj * torch.linalg.inv(eye + aj * zj.T @ zj))
        gam.append(len(zj) / m)
    res = []
    for z in x:
        cz = [c @ z for c in out_c]
        logits = torch.tensor([-lam * torch.linalg.norm(v) for v in cz], dtype=D64)
        pi = torch.softmax(logits, 0)
        step = z + eta * (e @ z - sum(g * p * v for g, p, v in zip(gam, pi, cz)))
        res.append(step / torch.linalg.norm(step))
    return torch.stack(res)


def test_vector_layer_equals_independent_reference():
    g = torch.Generator().manual_seed(1)
    z = unit(torch.randn(60, 6, generator=g, dtype=D64))
    y = torch.arange(60) % 3
    x = unit(torch.randn(25, 6, generator=g, dtype=D64))
    eta, eps2, lam = 0.3, 0.2, 4.0  # a small λ keeps the memberships soft, so every term matters
    layer = ReduLayer(6, 3, eta=eta, eps=math.sqrt(eps2), lam=lam, dtype=D64)
    layer.construct(z, y)
    with torch.no_grad():
        pi, out = layer.memberships_and_step(x)
    ref = reference_step(z, y, x, 3, eta, eps2, lam)
    assert torch.allclose(out, ref, atol=1e-6, rtol=0)
    assert float((out - ref).abs().max()) < 1e-10
    assert 0.05 < float(pi.max(1).values.min()) < 0.99  # genuinely soft
    assert torch.allclose(layer.gamma, torch.full((3,), 1 / 3, dtype=D64))


def test_layer_step_is_gradient_ascent_on_rate_reduction():
    # ∂ΔR/∂z_i = E z_i − Σ_j γ_j π_ij C_j z_i with the true memberships: the layer direction is the ΔR gradient.
    g = torch.Generator().manual_seed(2)
    z = unit(torch.randn(40, 5, generator=g, dtype=D64))
    y = torch.arange(40) % 2
    layer = ReduLayer(5, 2, eps=0.4, dtype=D64)
    layer.construct(z, y)
    zg = z.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(srr.rate_reduction(zg, y, eps=0.4), zg)
    cz = torch.einsum("kcd,md->kmc", layer.Cs[:, 0], z)
    direct = z @ layer.E[0] - (layer.gamma[y].view(-1, 1) * cz[y, torch.arange(40)])
    assert torch.allclose(grad, direct, atol=1e-10)


def spatial_step(z_train, y_train, x, num_classes, eta, eps, lam):
    """The signal-domain layer with dense CT × CT block-circulant operators (independent of the FFT)."""
    m, c, t = x.shape
    e = block_circulant_operator(z_train, eps)
    cs = [block_circulant_operator(z_train[y_train == j], eps) for j in range(num_classes)]
    gam = [float((y_train == j).sum()) / len(y_train) for j in range(num_classes)]
    v = x.reshape(m, c * t)
    cz = torch.stack([v @ cj.T for cj in cs])  # (K, m, CT)
    pi = torch.softmax(-lam * cz.norm(dim=-1), dim=0)  # (K, m)
    comp = sum(gam[j] * pi[j, :, None] * cz[j] for j in range(num_classes))
    step = v + eta * (v @ e.T - comp)
    return (step / step.norm(dim=1, keepdim=True)).reshape(m, c, t)


def test_block_circulant_operator_matches_its_definition():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(7, 2, 5, generator=g, dtype=D64)
    eps, (m, c, t) = 0.6, z.shape
    alpha = c / (m * eps**2)
    circ_gram = sum(circulant_matrix(zi) @ circulant_matrix(zi).T for zi in z)
    assert torch.equal(circulant_matrix(z[0])[:, 2], torch.roll(z[0], 2, dims=-1).reshape(-1))
    ref = alpha * torch.linalg.inv(torch.eye(c * t, dtype=D64) + alpha / t * circ_gram)
    assert torch.allclose(block_circulant_operator(z, eps), ref, atol=1e-12)


def test_fourier_1d_layer_equals_block_circulant_spatial_operator():
    g = torch.Generator().manual_seed(4)
    z = unit(torch.randn(30, 3, 8, generator=g, dtype=D64))
    y = torch.arange(30) % 3
    x = unit(torch.randn(12, 3, 8, generator=g, dtype=D64))
    eta, eps, lam = 0.5, 0.7, 3.0
    layer = ReduLayer(3, 3, spatial=(8,), eta=eta, eps=eps, lam=lam, dtype=D64)
    layer.construct(z, y)
    with torch.no_grad():
        out = layer(x)
    ref = spatial_step(z, y, x, 3, eta, eps, lam)
    assert out.dtype == D64 and out.shape == (12, 3, 8)
    assert float((out - ref).abs().max()) < 1e-6
    # the per-frequency operator is the Fourier transform of the circulant one: T inversions of C × C
    assert layer.E.shape == (8, 3, 3) and layer.E.is_complex()


def shifted_patterns(n_per_class, channels, length, classes, seed, noise=0.05):
    """Multichannel signals: class j is a fixed random pattern at a random circular shift, plus noise."""
    g = torch.Generator().manual_seed(seed)
    pats = torch.randn(classes, channels, length, generator=torch.Generator().manual_seed(99), dtype=D64)
    xs, ys = [], []
    for j in range(classes):
        for _ in range(n_per_class):
            s = int(torch.randint(length, (1,), generator=g))
            xs.append(torch.roll(pats[j], s, dims=-1) + noise * torch.randn(channels, length, generator=g, dtype=D64))
            ys.append(j)
    return torch.stack(xs), torch.tensor(ys)


def test_shift_invariance_1d_prediction_and_equivariant_features():
    x, y = shifted_patterns(12, 2, 16, 3, seed=0)
    net = ReduNet(3, 4, channels=4, spatial=(16,), in_channels=2, kernel=5, eps=0.5, dtype=D64)
    net.build(x, y)
    xt, yt = shifted_patterns(5, 2, 16, 3, seed=1)
    feats, pred = net.transform(xt)[0], net.predict(xt)
    assert float((pred == yt).double().mean()) >= 0.9
    for s in (1, 5, 11):
        shifted = torch.roll(xt, s, dims=-1)
        assert torch.equal(net.predict(shifted), pred)
        assert float((net.transform(shifted)[0] - torch.roll(feats, s, dims=-1)).abs().max()) < 1e-6


def test_shift_invariance_2d_images():
    g = torch.Generator().manual_seed(5)
    x = torch.rand(24, 1, 6, 6, generator=g, dtype=D64)
    y = torch.arange(24) % 2
    net = ReduNet(2, 2, channels=3, spatial=(6, 6), in_channels=1, kernel=3, eps=0.5, lam=5.0, dtype=D64)
    net.build(x, y)
    feats = net.transform(x[:6])[0]
    shifted = torch.roll(x[:6], (2, -1), dims=(-2, -1))
    assert float((net.transform(shifted)[0] - torch.roll(feats, (2, -1), dims=(-2, -1))).abs().max()) < 1e-6
    assert torch.equal(net.predict(shifted), net.predict(x[:6]))


def track(net, x, y):
    rows = []

    def cb(ell, z, pi):
        rows.append((float(srr.rate_reduction(z, y, eps=net.eps, dtype=D64)),
                     srr.analysis.class_cosines(z, y)["between"]))

    net.build(x, y, callback=cb)
    return rows


def test_delta_r_rises_every_layer_on_subspace_mixture():
    mix = mixture_of_subspaces(k=3, d=16, rank=2, n=60, noise=0.2, seed=0)
    rows = track(ReduNet(3, 8, 16), mix.x, mix.labels)
    dr = [r[0] for r in rows]
    assert len(dr) == 9 and all(b > a for a, b in zip(dr, dr[1:])), dr
    assert rows[-1][1] < 0.8 * rows[0][1]  # between-class cosine falls


def test_delta_r_rises_every_layer_on_digits():
    data = load_data("digits")
    x = data.unnormalize(data.x_train)
    net = ReduNet(10, 6, 64)
    rows = track(net, x, data.y_train)
    dr = [r[0] for r in rows]
    assert all(b > a for a, b in zip(dr, dr[1:])), dr
    assert dr[-1] > dr[0] + 4.0
    assert rows[-1][1] < rows[0][1] - 0.03  # between-class cosine falls
    acc = float((net.predict(data.unnormalize(data.x_test)) == data.y_test).double().mean())
    assert acc > 0.95


def test_save_load_round_trip_and_errors(tmp_path):
    mix = mixture_of_subspaces(k=2, d=8, rank=2, n=20, seed=1)
    net = ReduNet(2, 2, 8)
    with pytest.raises(ConfigError, match="not built"):
        net(mix.x)
    with pytest.raises(DataError, match=r"shape \(8,\)"):
        net.build(torch.randn(5, 7), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ConfigError, match="labels must lie"):
        net.build(mix.x, mix.labels + 5)
    net.build(mix.x, mix.labels)
    net.save(tmp_path)
    back = ReduNet.load(tmp_path)
    assert torch.equal(back(mix.x), net(mix.x))
    (tmp_path / "config.json").write_text('{"model": "crate_nano", "args": {}}')
    with pytest.raises(CheckpointError, match="holds crate_nano, not a ReduNet"):
        ReduNet.load(tmp_path)


def test_absent_class_gets_no_membership():
    mix = mixture_of_subspaces(k=2, d=8, rank=2, n=20, seed=1)
    net = ReduNet(3, 1, 8)  # class 2 never appears
    net.build(mix.x, mix.labels)
    pi = net.transform(mix.x)[1]
    assert float(pi[:, 2].max()) == 0.0 and torch.allclose(pi.sum(1), torch.ones(len(pi)))


def test_shift_invariant_rates_match_signal_domain_and_rise():
    from srr.redunet.rates import rate, redunet_rates

    x, y = shifted_patterns(6, 2, 8, 2, seed=3)
    z = unit(x)
    eps, (m, c, t) = 0.5, z.shape
    alpha = c / (m * eps**2)
    circ_gram = sum(circulant_matrix(zi) @ circulant_matrix(zi).T for zi in z)
    ref = 0.5 * torch.logdet(torch.eye(c * t, dtype=D64) + alpha / t * circ_gram)
    assert abs(float(rate(z, eps, spatial_dims=1)) - float(ref)) < 1e-9
    flat = redunet_rates(z, y, eps, 2, spatial_dims=0)
    assert abs(flat["delta_R"] - float(srr.rate_reduction(z.flatten(1), y, eps=eps, dtype=D64))) < 1e-9
    net = ReduNet(2, 4, channels=2, spatial=(8,), eps=eps, dtype=D64)
    rows = []
    net.build(x, y, callback=lambda ell, f, pi: rows.append(redunet_rates(f, y, eps, 2, 1)["delta_R"]))
    assert all(b > a for a, b in zip(rows, rows[1:])), rows
