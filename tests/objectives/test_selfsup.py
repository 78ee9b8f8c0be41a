"""The self-supervised objectives (dino, simdino, mcr2_views): losses against independent computations of their
formulas, the EMA teacher, the weighted k-NN against scikit-learn, and tiny pre-trainings that run, resume to the
uninterrupted weights and evaluate."""
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from srr.analysis.classifiers import weighted_knn
from srr.analysis.features import collapse_diagnostics, effective_rank, linear_probe, mean_cosine
from srr.cli import main
from srr.objectives.dino import dino_item_losses
from srr.objectives.mcr2_views import views_rate_reduction
from srr.objectives.selfsup import ema_momentum
from srr.objectives.simdino import _loss, _statistics, simdino_loss
from srr.objectives.views import multi_crop

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--model", "crate_nano", "--data", "digits", "--set", "dim=16", "--set", "depth=2", "--set", "heads=2",
        "--set", "patch_size=2", "--head-hidden", "32", "--head-dim", "16", "--batch-size", "96", "--knn-bank", "400",
        "--no-progress", "--no-tensorboard"]


def unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


# --- SimDINO ---------------------------------------------------------------------------------------------------------

def reference_simdino(teacher, student, eps, gamma=None, mean_features=True):
    """The loss written out: pairs (u, v ≠ u) one by one, log-determinants of explicit p × p matrices."""
    n, p = teacher[0].shape
    sims = [float((teacher[u][i] * student[v][i]).sum()) for u in range(len(teacher)) for v in range(len(student))
            if u != v for i in range(n)]
    pairs = len(teacher) * len(student) - len(teacher)
    assert len(sims) == pairs * n
    cos = sum(sims) / (pairs * n)
    rates = []
    for u in range(len(teacher)):
        z = (student[u] + teacher[u]) / 2 if mean_features else student[u]
        rates.append(0.5 * float(torch.logdet(torch.eye(p, dtype=torch.float64) + p / (n * eps ** 2) * z.T @ z)))
    rbar = sum(rates) / len(rates)
    g = (p + n) / (p * n) if gamma is None else gamma
    return -cos - g * rbar, cos, rbar


@pytest.mark.parametrize("mean_features", [True, False])
def test_simdino_loss_equals_the_formula_with_gamma_and_skipped_same_view_pairs(mean_features):
    teacher = [unit(12, 8, seed=s) for s in (1, 2)]
    student = [unit(12, 8, seed=s) for s in (3, 4, 5, 6)]
    eps = 0.3
    loss, terms = simdino_loss(teacher, student, eps, rate_features="mean" if mean_features else "student")
    want, cos, rbar = reference_simdino(teacher, student, eps, mean_features=mean_features)
    assert abs(float(loss) - want) < 1e-6 and abs(float(terms["cos"]) - cos) < 1e-6
    assert abs(float(terms["rate"]) - rbar) < 1e-6
    assert abs(float(terms["gamma"]) - (8 + 12) / (8 * 12)) < 1e-12
    loss, _ = simdino_loss(teacher, student, eps, gamma=0.25, rate_features="mean" if mean_features else "student")
    assert abs(float(loss) - reference_simdino(teacher, student, eps, 0.25, mean_features)[0]) < 1e-6
    # a same-view pair counted would add ⟨z_t^u, z_s^u⟩: teacher = student on view 1 must not change the mean by it
    same = [student[0].clone(), teacher[1]]
    loss, terms = simdino_loss(same, student, eps)
    assert abs(float(terms["cos"]) - reference_simdino(same, student, eps)[1]) < 1e-9


def test_simdino_statistics_of_two_halves_give_the_loss_of_the_whole_batch():
    teacher = [unit(10, 6, seed=s) for s in (1, 2)]
    student = [unit(10, 6, seed=s) for s in (3, 4, 5)]
    halves = [_statistics([t[a:b] for t in teacher], [s[a:b] for s in student], "mean") for a, b in ((0, 4), (4, 10))]
    summed = {k: halves[0][k] + halves[1][k] for k in halves[0]}
    assert abs(float(_loss(summed, 0.5, 0.0)[0]) - float(simdino_loss(teacher, student, 0.5)[0])) < 1e-9


# --- DINO ------------------------------------------------------------------------------------------------------------

def test_dino_loss_equals_the_formula():
    g = torch.Generator().manual_seed(0)
    n, k = 5, 7
    teacher = [torch.randn(n, k, generator=g, dtype=torch.float64) for _ in range(2)]
    student = [torch.randn(n, k, generator=g, dtype=torch.float64) for _ in range(4)]
    centre = torch.randn(k, generator=g, dtype=torch.float64)
    got = dino_item_losses(teacher, student, centre, 0.04, 0.1)
    for i in range(n):
        total, pairs = 0.0, 0
        for u in range(2):
            e = np.exp((teacher[u][i] - centre).numpy() / 0.04 - ((teacher[u][i] - centre).numpy() / 0.04).max())
            q = e / e.sum()
            for v in range(4):
                if u == v:
                    continue
                s = student[v][i].numpy() / 0.1
                logp = s - (np.log(np.exp(s - s.max()).sum()) + s.max())
                total += -(q * logp).sum()
                pairs += 1
        assert pairs == 6
        assert abs(float(got[i]) - total / pairs) < 1e-6


# --- unsupervised MCR² -----------------------------------------------------------------------------------------------

def test_views_rate_reduction_is_mcr2_with_one_class_per_image():
    from srr.measures import rate_reduction

    views = [unit(6, 5, seed=s) for s in (1, 2, 3)]
    terms = views_rate_reduction(views, 0.5)
    z = torch.cat(views)  # rows: view-major; the labels say which image each row is
    labels = torch.arange(6).repeat(3)
    assert abs(float(terms["delta_R"]) - float(rate_reduction(z, labels, 0.5))) < 1e-6


# --- the EMA teacher -------------------------------------------------------------------------------------------------

def test_ema_momentum_follows_the_cosine_from_m0_to_one():
    assert ema_momentum(0.996, 1, 100) == pytest.approx(0.996, abs=1e-15)
    assert ema_momentum(0.996, 51, 100) == pytest.approx(0.998, abs=1e-15)
    assert ema_momentum(0.9, 101, 100) == pytest.approx(1.0, abs=1e-15)


def test_ema_update_is_exact():
    from srr.data import load_data
    from srr.models import create_model
    from srr.objectives.simdino import SimDINO, SimDINOConfig

    data = load_data("digits")
    model = create_model("crate_nano", dim=16, depth=1, heads=2, patch_size=2, **data.model_overrides())
    obj = SimDINO(SimDINOConfig(head_hidden=8, head_dim=4, momentum=0.9), data).to(torch.device("cpu"))
    obj.check_model(model)
    net = obj.network(model)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p))
    before = {k: v.clone() for k, v in obj.teacher.state_dict().items()}
    student = {k: v.clone() for k, v in net.state_dict().items()}
    obj.after_step(net, 3, 10)
    m = 1 - 0.1 * 0.5 * (1 + math.cos(math.pi * 2 / 10))
    for key, value in obj.teacher.state_dict().items():  # float32 against the float64 formula: within round-off
        want = m * before[key].double() + (1 - m) * student[key].double()
        assert float((value.double() - want).abs().max()) <= 2 ** -22 * max(1.0, float(want.abs().max())), key
    # one more step at a momentum of 0.9 moves the teacher 10 % of the way: not a look-alike schedule
    assert abs(m - 0.90954915) < 1e-8
    assert not any(p.requires_grad for p in obj.teacher.parameters())


# --- views -----------------------------------------------------------------------------------------------------------

def test_multi_crop_gives_two_global_and_m_local_views_reproducibly():
    x = torch.randn(3, 1, 8, 8)
    a = multi_crop(x, torch.Generator().manual_seed(5), local=3, local_size=(4, 4), noise=0.1)
    b = multi_crop(x, torch.Generator().manual_seed(5), local=3, local_size=(4, 4), noise=0.1)
    assert [tuple(v.shape) for v in a] == [(3, 1, 8, 8)] * 2 + [(3, 1, 4, 4)] * 3
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    whole = multi_crop(x, torch.Generator().manual_seed(5), local=0, local_size=(4, 4), global_min=1.0, flip=False)
    # area fraction 1 and aspect ratio ≠ 1 crops to the image clamped: with ratio fixed at 1 the crop is the identity
    from srr.objectives.views import resized_crop

    same = resized_crop(x, torch.Generator().manual_seed(0), (1.0, 1.0), (8, 8), ratio=(1.0, 1.0))
    assert torch.allclose(same, x, atol=1e-5) and len(whole) == 2


# --- evaluation ------------------------------------------------------------------------------------------------------

def test_weighted_knn_equals_scikit_learn():
    from sklearn.neighbors import KNeighborsClassifier

    g = torch.Generator().manual_seed(3)
    train, test = torch.randn(200, 6, generator=g, dtype=torch.float64), torch.randn(50, 6, generator=g,
                                                                                       dtype=torch.float64)
    labels = torch.randint(0, 4, (200,), generator=g)
    got = weighted_knn(train, labels, test, k=20, temperature=0.07, num_classes=4)
    clf = KNeighborsClassifier(n_neighbors=20, metric="cosine", algorithm="brute",
                               weights=lambda d: np.exp((1 - d) / 0.07)).fit(train.numpy(), labels.numpy())
    assert (got.numpy() == clf.predict(test.numpy())).all()
    # by hand on a fixed case: two neighbours of class 1 at similarity 0.9 outweigh three of class 0 at 0.8
    bank = F.normalize(torch.tensor([[0.9, math.sqrt(1 - 0.81)]] * 2 + [[0.8, 0.6]] * 3, dtype=torch.float64), dim=1)
    pred = weighted_knn(bank, torch.tensor([1, 1, 0, 0, 0]), torch.tensor([[1.0, 0.0]]), k=5, temperature=0.07)
    assert 2 * math.exp(0.9 / 0.07) > 3 * math.exp(0.8 / 0.07) and int(pred[0]) == 1


def test_collapse_diagnostics():
    z = unit(30, 5, seed=2)
    pairs = [float(z[i] @ z[j]) for i in range(30) for j in range(30) if i != j]
    assert abs(mean_cosine(z) - sum(pairs) / len(pairs)) < 1e-12
    one_point = torch.ones(10, 4)
    d = collapse_diagnostics(one_point)
    assert abs(d["mean_cosine"] - 1) < 1e-12 and abs(d["effective_rank"] - 1) < 1e-9
    assert abs(effective_rank(torch.eye(4)) - 4) < 1e-9
    # coding rate of n copies of one unit vector: ½ log(1 + d/ε²) (one non-zero eigenvalue n·d/(n ε²))
    assert abs(d["coding_rate"] - 0.5 * math.log(1 + 4 / 0.25)) < 1e-9


def test_linear_probe_separates_separable_classes():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[4.0, 0.0], [0.0, 4.0], [-4.0, -4.0]])
    y = torch.randint(0, 3, (120,), generator=g)
    z = centres[y] + 0.3 * torch.randn(120, 2, generator=g)
    assert linear_probe(z[:80], y[:80], z[80:], y[80:], 3) == 1.0


# --- tiny pre-trainings: run, resume, evaluate -----------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("method,extra", [("simdino", []), ("dino", ["--prototypes", "32"]), ("mcr2_views", [])])
def test_tiny_pretraining_runs_resumes_and_evaluates(method, extra, tmp_path, capsys):
    argv = ["train", "--objective", method, *TINY, *extra, "--epochs", "2", "--local-crops", "1", "--seed", "2"]
    assert main([*argv, "--out", str(tmp_path / "ref")]) == 0
    assert main([*argv, "--max-steps", "20", "--checkpoint-every", "7", "--out", str(tmp_path / "cut")]) == 0
    assert main(["train", "--resume", str(tmp_path / "cut"), "--max-steps", "0"]) == 0
    ref, cut = load_file(str(tmp_path / "ref" / "model.safetensors")), load_file(str(tmp_path / "cut" /
                                                                                     "model.safetensors"))
    assert all(torch.equal(ref[k], cut[k]) for k in ref)
    rows = [json.loads(ln) for ln in (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()]
    again = [json.loads(ln) for ln in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["test_knn"] for r in rows] == [r["test_knn"] for r in again]
    assert {"test_knn", "test_coding_rate", "test_effective_rank", "test_mean_cosine"} <= set(rows[0])
    assert 0.3 < rows[-1]["test_knn"] <= 1 and 0.3 < rows[-1]["test_linear_probe"] <= 1  # chance is 0.1
    terms = {"simdino": {"train_cos", "train_rate"}, "dino": {"train_cross_entropy", "train_teacher_entropy"},
             "mcr2_views": {"train_R", "train_Rc", "train_delta_R"}}[method]
    assert terms <= set(rows[-1])


def test_the_simdino_recipe_resolves():
    from srr.training import plan_training

    plan = plan_training(recipe="simdino_digits")
    assert plan.objective == "simdino" and plan.model == "crate_nano" and plan.data == "digits"
    assert plan.objective_config.head_dim == 64 and plan.train.batch_size == 128 and plan.sources["epochs"] != "default"


def _objective(cls_name, **config):
    from srr.data import load_data
    from srr.models import create_model
    from srr.objectives import get_objective

    data = load_data("digits")
    model = create_model("crate_nano", dim=16, depth=1, heads=2, patch_size=2, **data.model_overrides())
    cls = get_objective(cls_name)
    obj = cls(cls.Config(head_hidden=8, head_dim=6, local_crops=1, **config), data).to(torch.device("cpu"))
    obj.check_model(model)
    net = obj.network(model)
    batch = data.train_set.__getitems__(list(range(10)))
    return obj, net, obj.prepare(batch, torch.Generator().manual_seed(0))


def test_the_mcr2_views_objective_computes_views_rate_reduction_of_its_features():
    obj, net, inputs = _objective("mcr2_views", eps=0.5)
    loss, terms = obj.loss_from(obj.statistics(net, inputs))
    views = [F.normalize(v.double(), dim=-1) for v in net(inputs.x)]
    want = views_rate_reduction(views, 0.5)
    assert abs(float(loss.detach()) - float(want["loss"].detach())) < 1e-4
    assert abs(float(terms["R"]) - float(want["R"].detach())) < 1e-4


def test_the_dino_objective_uses_then_updates_its_centre():
    obj, net, inputs = _objective("dino", prototypes=5, centre_momentum=0.9)
    obj.centre.copy_(torch.arange(5.0))
    loss, _ = obj.loss_from(obj.statistics(net, inputs))
    with torch.no_grad():
        teacher, student = obj.teacher(inputs.x[:2]), net(inputs.x)
    want = dino_item_losses(teacher, student, torch.arange(5.0), 0.04, 0.1).mean()
    assert abs(float(loss.detach()) - float(want)) < 1e-5
    batch_centre = torch.cat(teacher).mean(0)
    obj.after_step(net, 1, 10)
    assert torch.allclose(obj.centre, 0.9 * torch.arange(5.0) + 0.1 * batch_centre, atol=1e-6)
    assert torch.equal(obj.state_dict()["centre"], obj.centre)
