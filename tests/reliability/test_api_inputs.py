"""Bad values through the Python API of the measures, the MCR² loss, ReduNet and the classifiers: a catalogue.

Every case is refused where the value enters the public function, with a subclass of ``srr.errors.SrrError`` and a
one-line message that names the argument (and, for sizes, the limit), before anything large is allocated and without
any warning first. The cases are grouped by class:

* ``resources``: sizes that cannot be held (a label of 1e9, a huge K, K·p, K × F × C × C operators, …);
* ``values``: arguments of the wrong type or out of range;
* ``silent``: inputs that used to give a plausible wrong answer (NaN, a dropped imaginary part, 3.7 classes, …);
* ``foreign``: inputs that used to raise another library's error (TypeError, RuntimeError, NotImplementedError).

The memory limit is fixed for the catalogue (``SRR_MEMORY_LIMIT`` = 8 GiB) so that the size cases do not depend on
the machine; one case runs in a child process under an address-space limit (``RLIMIT_AS``) instead.
"""
import os
import re
import resource
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from reliability_counts import tried

import srr
from srr.analysis import class_cosines, cosine_matrix, knn, nearest_subspace
from srr.checks import check_labels
from srr.errors import ConfigError, DataError, NonFiniteError, ResourceError, SrrError
from srr.losses import MCR2
from srr.measures import logdet_i_plus, memberships
from srr.redunet import ReduLayer, ReduNet, block_circulant_operator, regularized_inverse
from srr.redunet.rates import rate, redunet_rates

g = torch.Generator().manual_seed(0)
Z = torch.nn.functional.normalize(torch.randn(20, 4, generator=g), dim=1)
Y = torch.arange(20) % 3
U = torch.randn(2, 4, 2, generator=g)
BIG = torch.cat([torch.zeros(19, dtype=torch.long), torch.tensor([10**9])])  # one corrupt label of 1e9
HUGE_K = 10**9 + 1
NAN = float("nan")
SOFT = torch.softmax(torch.randn(20, 3, generator=g, dtype=torch.float64), 1)
LIMIT = r"more than the [\d.]+ GiB this machine can give"


def built_redunet() -> ReduNet:
    net = ReduNet(3, 1, 4)
    net.build(Z, Y)
    return net


def with_value(t: torch.Tensor, index, value) -> torch.Tensor:
    t = t.clone()
    t[index] = value
    return t


# (id, call, expected error, regular expression the one-line message must match)
RESOURCES = [
    ("rate_reduction-label-1e9", lambda: srr.rate_reduction(Z, BIG), ConfigError,
     r"label 1000000000 implies 1,000,000,001 classes for 20 samples \(at most 1,024"),
    ("rate_reduction-num_classes-1e9", lambda: srr.rate_reduction(Z, BIG, 0.5, HUGE_K), ResourceError,
     r"rate_reduction: K = 1,000,000,001 classes \(num_classes=1000000001\) .*needs about .*" + LIMIT),
    ("compressed_rate-label-1e9", lambda: srr.compressed_rate(Z, BIG), ConfigError, r"implies 1,000,000,001 classes"),
    ("compressed_rate-batched-num_classes-1e9", lambda: srr.compressed_rate(Z[None], BIG[None], num_classes=HUGE_K),
     ResourceError, r"compressed_rate: K = 1,000,000,001 classes \(num_classes=1000000001\).*" + LIMIT),
    ("memberships-num_classes-1e9", lambda: memberships(BIG, HUGE_K), ResourceError,
     r"memberships: a one-hot matrix of 20 labels × 1,000,000,001 classes \(num_classes=1000000001\).*" + LIMIT),
    ("memberships-label-1e9", lambda: memberships(BIG), ConfigError, r"implies 1,000,000,001 classes"),
    ("soft-memberships-huge-K", lambda: srr.compressed_rate(Z, torch.full((1, 1), 1e-8).expand(20, 10**8)),
     ResourceError, r"K = 100,000,000 classes \(the columns of the memberships\).*" + LIMIT),
    ("MCR2-label-1e9", lambda: MCR2()(Z, BIG), ConfigError, r"label 1000000000 implies 1,000,000,001 classes"),
    ("MCR2-num_classes-1e9", lambda: MCR2(num_classes=HUGE_K)(Z, BIG), ResourceError,
     r"MCR2: K = 1,000,000,001 classes \(num_classes=1000000001\) of 4 × 4 Gram .*m × K membership.*" + LIMIT),
    ("MCR2-soft-huge-K", lambda: MCR2()(Z, torch.full((1, 1), 1e-8).expand(20, 10**8)), ResourceError,
     r"MCR2: K = 100,000,000 classes \(num_classes=None\) of 4 × 4 Gram matrices.*" + LIMIT),
    ("subspace_compression-huge-K·p", lambda: srr.subspace_compression(Z, torch.randn(1, 4, 1).expand(10**8, 4, 10)),
     ResourceError, r"subspace_compression: .*K = 100,000,000 heads of p = 10 .*K·p = 1,000,000,000.*" + LIMIT),
    ("coding_rate-expanded-Z", lambda: srr.coding_rate(torch.zeros(1, 1, 1).expand(10**6, 1000, 100)),
     ResourceError, r"coding_rate: a copy of Z \(1000000, 1000, 100\) in torch.float32 needs about .*" + LIMIT),
    ("ReduNet-K×F×C×C", lambda: ReduNet(10**6, 1, 1000), ResourceError,
     r"ReduNet operators of 1 layer\(s\): 1,000,001 \(num_classes \+ 1\) × 1 frequencies × 1000 × 1000.*" + LIMIT),
    ("ReduNet-spatial", lambda: ReduNet(10, 2, 64, spatial=(4096, 4096)), ResourceError,
     r"ReduNet operators of 2 layer\(s\): 11 .* 16,777,216 frequencies × 64 × 64.*" + LIMIT),
    ("ReduLayer-K×F×C×C", lambda: ReduLayer(100, 10**6, spatial=(1000,)), ResourceError,
     r"1,000,001 \(num_classes \+ 1\) × 1,000 frequencies × 100 × 100.*" + LIMIT),
    ("ReduNet-build-label-1e9", lambda: ReduNet(3, 1, 4).build(Z, BIG), ConfigError,
     r"label 1000000000 is out of range for 3 classes"),
    ("redunet_rates-label-1e9", lambda: redunet_rates(Z, BIG, 0.5, 3), ConfigError,
     r"label 1000000000 is out of range"),
    ("block_circulant_operator-CT×CT", lambda: block_circulant_operator(torch.randn(1, 4, 20000), 0.5), ResourceError,
     r"block_circulant_operator: 1 signals of 4 × 20000 \(a 80000 × 80000 operator\).*" + LIMIT),
    ("knn-chunk", lambda: knn(torch.randn(100000, 2), torch.zeros(100000, dtype=torch.long), torch.randn(100000, 2),
                              chunk=10**6), ResourceError,
     r"knn: the similarities of a chunk of 100,000 test samples \(chunk=1000000\).*" + LIMIT),
    ("knn-label-1e9", lambda: knn(Z, BIG, Z), DataError, r"implies 1,000,000,001 classes"),
    ("nearest_subspace-num_classes-1e9", lambda: nearest_subspace(Z, Y, Z, 2, num_classes=10**9), ResourceError,
     r"nearest_subspace: .*K = 1,000,000,000 classes \(num_classes=1000000000\).*" + LIMIT),
    ("class_cosines-label-1e9", lambda: class_cosines(Z, BIG), DataError, r"implies 1,000,000,001 classes"),
    ("cosine_matrix-m×m", lambda: cosine_matrix(torch.randn(200000, 1), torch.zeros(200000, dtype=torch.long)),
     ResourceError, r"cosine_matrix of 200,000 samples \(an m × m matrix\).*" + LIMIT),
]

VALUES = [
    ("lam-nan", lambda: srr.sparse_rate_reduction(Z, U, 0.5, NAN), ConfigError, r"lam must be a finite number"),
    ("lam-negative", lambda: srr.sparse_rate_reduction(Z, U, 0.5, -0.1), ConfigError, r"lam must be >= 0"),
    ("eps-1e-300", lambda: srr.coding_rate(Z, 1e-300), ConfigError, r"eps = 1e-300 is out of range"),
    ("eps-1e300", lambda: srr.rate_reduction(Z, Y, 1e300), ConfigError, r"eps = 1e\+300 is out of range"),
    ("eps-1e-300-MCR2", lambda: MCR2(eps=1e-300), ConfigError, r"eps = 1e-300 is out of range"),
    ("eps-1e-300-ReduNet", lambda: ReduNet(3, 1, 4, eps=1e-300), ConfigError, r"eps = 1e-300 is out of range"),
    ("eps-string", lambda: srr.subspace_compression(Z, U, "0.1"), ConfigError, r"eps must be a finite positive"),
    ("eps-bool", lambda: srr.coding_rate(Z, True), ConfigError, r"eps must be a finite positive number"),
    ("num_classes-3.7", lambda: srr.rate_reduction(Z, Y, 0.5, 3.7), ConfigError, r"num_classes must be an integer, "
                                                                                  r"got 3.7"),
    ("num_classes-0", lambda: srr.compressed_rate(Z, Y, num_classes=0), ConfigError, r"num_classes must be >= 1"),
    ("num_classes-bool-MCR2", lambda: MCR2(num_classes=True), ConfigError, r"num_classes must be an integer"),
    ("reduction-int", lambda: srr.subspace_compression(Z, U, reduction=1), ConfigError,
     r"reduction must be one of sum, none; got 1"),
    ("reduction-mean", lambda: srr.subspace_compression(Z, U, reduction="mean"), ConfigError,
     r"reduction must be one of sum, none; got 'mean'"),
    ("norm-None", lambda: srr.sparse_rate_reduction(Z, U, norm=None), ConfigError, r"norm must be one of l0, l1"),
    ("threshold-negative", lambda: srr.sparsity(Z, -1.0), ConfigError, r"threshold must be >= 0"),
    ("normalize-string", lambda: srr.coding_rate(Z, normalize="yes"), ConfigError, r"normalize must be true or false"),
    ("dtype-int", lambda: srr.rate_reduction(Z, Y, dtype=torch.int64), ConfigError,
     r"dtype must be a floating torch dtype.*torch.int64"),
    ("dtype-complex", lambda: srr.subspace_compression(Z, U, dtype=torch.complex64), ConfigError,
     r"dtype must be a floating torch dtype"),
    ("gamma1-nan", lambda: MCR2(gamma1=NAN), ConfigError, r"gamma1 must be a finite number"),
    ("gamma1-zero", lambda: MCR2(gamma1=0), ConfigError, r"gamma1 must be > 0"),
    ("gamma2-inf", lambda: MCR2(gamma2=float("inf")), ConfigError, r"gamma2 must be a finite number, got inf"),
    ("distributed-string", lambda: MCR2(distributed="yes"), ConfigError, r"distributed must be None, True or False"),
    ("ReduNet-eta-nan", lambda: ReduNet(3, 1, 4, eta=NAN), ConfigError, r"eta must be a finite number"),
    ("ReduNet-eta-zero", lambda: ReduNet(3, 1, 4, eta=0.0), ConfigError, r"eta must be > 0"),
    ("ReduNet-lam-nan", lambda: ReduNet(3, 1, 4, lam=NAN), ConfigError, r"lam must be a finite number"),
    ("ReduNet-lam-negative", lambda: ReduNet(3, 1, 4, lam=-1.0), ConfigError, r"lam must be > 0"),
    ("ReduNet-layers-zero", lambda: ReduNet(3, 0, 4), ConfigError, r"layers must be >= 1"),
    ("ReduNet-channels-2.5", lambda: ReduNet(3, 1, 2.5), ConfigError, r"channels must be an integer, got 2.5"),
    ("ReduNet-in_channels-negative", lambda: ReduNet(3, 1, 4, spatial=(8,), in_channels=-1), ConfigError,
     r"in_channels must be >= 1"),
    ("ReduNet-dtype-float16", lambda: ReduNet(3, 1, 4, dtype=torch.float16), ConfigError,
     r"torch.float32 or torch.float64, got dtype=torch.float16"),
    ("ReduNet-chunk-zero", lambda: built_redunet().transform(Z, chunk=0), ConfigError, r"chunk must be >= 1"),
    ("redunet-rate-spatial_dims", lambda: rate(Z, 0.5, 3), ConfigError, r"spatial_dims must lie in \[0, 2\]"),
    ("regularized_inverse-alpha-negative", lambda: regularized_inverse(torch.eye(3), -1.0), ConfigError,
     r"alpha must be > 0"),
    ("knn-k-zero", lambda: knn(Z, Y, Z, k=0), ConfigError, r"k must lie in \[1, 20\]"),
    ("knn-k-beyond", lambda: knn(Z, Y, Z, k=21), ConfigError, r"k must lie in \[1, 20\]"),
    ("n_components-zero", lambda: nearest_subspace(Z, Y, Z, n_components=0), ConfigError,
     r"n_components must be >= 1"),
    ("class_cosines-max_samples-zero", lambda: class_cosines(Z, Y, max_samples=0), ConfigError,
     r"max_samples must be >= 1"),
    ("logdet-scale-tensor-negative", lambda: logdet_i_plus(torch.eye(3)[None], torch.tensor([-1.0])), ConfigError,
     r"scale must be finite and >= 0, found -1"),
]

SILENT = [
    ("sparse_rate_reduction-lam-nan", lambda: srr.sparse_rate_reduction(Z, U, 0.1, lam=NAN), ConfigError,
     r"lam must be a finite number, got nan"),
    ("sparsity-empty", lambda: srr.sparsity(torch.zeros(0, 3)), ConfigError,
     r"Z of shape \(0, 3\) has no entries \(N·d = 0\)"),
    ("sparsity-no-tokens-batched", lambda: srr.sparsity(torch.zeros(2, 4, 0)), ConfigError, r"has no entries"),
    ("sparsity-threshold-nan", lambda: srr.sparsity(Z, NAN), ConfigError, r"threshold must be a finite number"),
    ("num_classes-3.7-memberships", lambda: memberships(Y, 3.7), ConfigError, r"num_classes must be an integer"),
    ("num_classes-3.7-MCR2", lambda: MCR2(num_classes=3.7), ConfigError, r"num_classes must be an integer, got 3.7"),
    ("complex-Z-coding_rate", lambda: srr.coding_rate(Z.to(torch.complex64)), ConfigError,
     r"Z is complex \(torch.complex64\); coding_rate takes real tensors"),
    ("complex-Z-rate_reduction", lambda: srr.rate_reduction(Z.to(torch.complex128), Y), ConfigError,
     r"Z is complex"),
    ("complex-U", lambda: srr.subspace_compression(Z, U.to(torch.complex64)), ConfigError, r"U is complex"),
    ("complex-Z-MCR2", lambda: MCR2()(Z.to(torch.complex64), Y), ConfigError, r"Z is complex"),
    ("complex-memberships", lambda: srr.compressed_rate(Z, SOFT.to(torch.complex128)), ConfigError,
     r"labels or memberships are complex"),
    ("complex-sparsity", lambda: srr.sparsity(Z.to(torch.complex64)), ConfigError, r"Z is complex"),
    ("complex-G", lambda: logdet_i_plus(torch.eye(2, dtype=torch.complex64), 1.0), ConfigError, r"G is complex"),
    ("complex-ReduNet-input", lambda: built_redunet()(Z.to(torch.complex64)), DataError, r"ReduNet input is complex"),
    ("complex-knn", lambda: knn(Z.to(torch.complex64), Y, Z), DataError, r"train features must be real"),
    ("memberships-rows-not-one", lambda: srr.compressed_rate(Z, torch.rand(20, 3, generator=g)), ConfigError,
     r"every row of memberships must sum to 1 \(within 0.0001\); a row is off by"),
    ("memberships-rows-zero-MCR2", lambda: MCR2()(Z, torch.zeros(20, 2)), ConfigError,
     r"every row of memberships must sum to 1"),
    ("memberships-rows-off-1e-3", lambda: srr.rate_reduction(Z, SOFT * (1 + 1e-3)), ConfigError,
     r"must sum to 1 \(within 0.0001\); a row is off by 0.001"),
    ("memberships-negative", lambda: srr.compressed_rate(Z, torch.stack([torch.full((20,), 1.5),
                                                                         torch.full((20,), -0.5)], 1)),
     ConfigError, r"memberships must be non-negative, found -0.5"),
    ("memberships-negative-MCR2", lambda: MCR2()(Z, torch.tensor([[1.5, -0.5]]).repeat(20, 1)), ConfigError,
     r"memberships must be non-negative"),
    ("memberships-nan", lambda: srr.rate_reduction(Z, with_value(SOFT, (3, 1), NAN)), NonFiniteError,
     r"memberships contains 1 non-finite value"),
    ("memberships-inf-MCR2", lambda: MCR2()(Z, with_value(SOFT, (0, 0), float("inf"))), NonFiniteError,
     r"memberships contains 1 non-finite value"),
    ("logdet-negative-scale", lambda: logdet_i_plus(torch.eye(3), -0.5), ConfigError, r"scale must be >= 0, got -0.5"),
    ("logdet-nan-scale", lambda: logdet_i_plus(torch.eye(3), NAN), ConfigError, r"scale must be a finite number"),
    ("logdet-inf-scale-tensor", lambda: logdet_i_plus(torch.eye(3), torch.tensor(float("inf"))), ConfigError,
     r"scale must be finite and >= 0, found inf"),
    ("logdet-indefinite-G", lambda: logdet_i_plus(torch.diag(torch.tensor([1.0, -0.5])), 1.0), ConfigError,
     r"G is not positive semi-definite"),
    ("logdet-indefinite-G-batched", lambda: logdet_i_plus(torch.stack([torch.eye(2), -torch.eye(2)]), 0.1),
     ConfigError, r"G is not positive semi-definite"),
    ("logdet-non-symmetric-G", lambda: logdet_i_plus(torch.tensor([[1.0, 0.5], [0.0, 1.0]]), 1.0), ConfigError,
     r"G is not symmetric: \|G - Gᵀ\| reaches 0.5"),
    ("logdet-nan-G", lambda: logdet_i_plus(with_value(torch.eye(3), (0, 1), NAN), 1.0), NonFiniteError,
     r"G contains 1 non-finite value"),
    ("knn-nan-features", lambda: knn(with_value(Z, (2, 2), NAN), Y, Z), NonFiniteError,
     r"train features contains 1 non-finite value"),
    ("nearest_subspace-nan-test", lambda: nearest_subspace(Z, Y, with_value(Z, (0, 0), NAN), 2), NonFiniteError,
     r"test features contains 1 non-finite value"),
    ("class_cosines-nan-features", lambda: class_cosines(with_value(Z, (1, 1), NAN), Y), NonFiniteError,
     r"features contains 1 non-finite value"),
    ("ReduNet-negative-labels", lambda: ReduNet(3, 1, 4).build(Z, Y - 1), ConfigError,
     r"labels must be non-negative, found -1"),
    ("class_cosines-float-labels", lambda: class_cosines(Z, Y.float()), DataError, r"labels must be integers"),
    ("labels-uint64-beyond-int64", lambda: srr.rate_reduction(Z, np.full(20, 2**63 + 5, dtype=np.uint64)),
     ConfigError, r"label 9223372036854775813 is beyond the int64 range"),  # used to wrap to a negative label
    ("labels-torch-uint64-beyond-int64", lambda: knn(Z, torch.full((20,), 2**63 + 5, dtype=torch.uint64), Z),
     DataError, r"label 9223372036854775813 is beyond the int64 range"),
]

FOREIGN = [
    ("lam-string", lambda: srr.sparse_rate_reduction(Z, U, 0.5, "0.1"), ConfigError,
     r"lam must be a number, got '0.1'"),
    ("threshold-string", lambda: srr.sparsity(Z, "a"), ConfigError, r"threshold must be a number, got 'a'"),
    ("gamma1-string", lambda: MCR2(gamma1="1"), ConfigError, r"gamma1 must be a number, got '1'"),
    ("knn-k-2.5", lambda: knn(Z, Y, Z, k=2.5), ConfigError, r"k must lie in \[1, 20\] \(an integer\), got 2.5"),
    ("n_components-1.5", lambda: nearest_subspace(Z, Y, Z, n_components=1.5), ConfigError,
     r"n_components must be an integer, got 1.5"),
    ("subspace_compression-batch-mismatch",
     lambda: srr.subspace_compression(torch.randn(2, 5, 4), torch.randn(3, 2, 4, 2)), ConfigError,
     r"the batch dimensions of Z \(2,\) and of U \(3,\) do not broadcast"),
    ("sparse_rate_reduction-batch-mismatch",
     lambda: srr.sparse_rate_reduction(torch.randn(2, 5, 4), torch.randn(3, 2, 4, 2)), ConfigError,
     r"do not broadcast"),
    ("heads_from_qkv-heads-zero", lambda: srr.heads_from_qkv(torch.randn(4, 4), 0), ConfigError,
     r"heads must be >= 1, got 0"),
    ("heads_from_qkv-heads-string", lambda: srr.heads_from_qkv(torch.randn(4, 4), "2"), ConfigError,
     r"heads must be an integer"),
    ("dtype-string", lambda: srr.coding_rate(Z, dtype="float64"), ConfigError,
     r"dtype must be a floating torch dtype such as torch.float64, got 'float64'"),
    ("memberships-dtype-string", lambda: memberships(Y, dtype="float"), ConfigError, r"dtype must be a torch dtype"),
    ("labels-strings", lambda: srr.rate_reduction(Z, ["a"] * 20), ConfigError,
     r"labels must be a tensor or a \(nested\) list of numbers"),
    ("labels-ragged-list", lambda: srr.compressed_rate(Z, [[1], [1, 2]]), ConfigError,
     r"labels must be a tensor or a \(nested\) list"),
    ("labels-object-array", lambda: srr.rate_reduction(Z, np.array([None] * 20)), ConfigError,
     r"labels must hold numbers, found a NumPy array of object"),
    ("labels-dict-MCR2", lambda: MCR2()(Z, {"a": 1}), ConfigError, r"labels must be a tensor, got dict"),
    ("Z-numpy", lambda: srr.coding_rate(Z.numpy()), ConfigError, r"Z must be a torch.Tensor, got ndarray"),
    ("Z-one-dimensional", lambda: srr.coding_rate(torch.randn(5)), ConfigError, r"Z must have shape \(\.\.\., m, d\)"),
    ("logdet-scale-shape", lambda: logdet_i_plus(torch.eye(3).expand(2, 3, 3), torch.ones(3)), ConfigError,
     r"scale of shape \(3,\) does not broadcast to the batch shape \(2,\)"),
    ("logdet-not-square", lambda: logdet_i_plus(torch.ones(2, 3), 1.0), ConfigError, r"G must be square matrices"),
    ("logdet-list", lambda: logdet_i_plus([[1.0]], 1.0), ConfigError, r"G must be a torch.Tensor, got list"),
    ("regularized_inverse-alpha-string", lambda: regularized_inverse(torch.eye(3), "1"), ConfigError,
     r"alpha must be a number, got '1'"),
    ("ReduNet-spatial-string", lambda: ReduNet(3, 1, 4, spatial="ab"), ConfigError,
     r"spatial must be \(\), \(T,\) or \(H, W\)"),
    ("knn-test-width", lambda: knn(Z, Y, torch.randn(5, 3)), DataError,
     r"test features have 3 entries per sample, the training features 4"),
    ("nearest_subspace-test-width", lambda: nearest_subspace(Z, Y, torch.randn(5, 3), 2), DataError,
     r"test features have 3 entries per sample"),
    ("MCR2-labels-2d", lambda: MCR2()(Z, Y[:, None]), ConfigError, r"labels must be \(m,\) with m = 20, got \(20, 1\)"),
]

CATALOGUE = [("resources", *c) for c in RESOURCES] + [("values", *c) for c in VALUES] + \
    [("silent", *c) for c in SILENT] + [("foreign", *c) for c in FOREIGN]


def test_catalogue_ids_are_unique_and_every_class_is_covered():
    ids = [c[1] for c in CATALOGUE]
    assert len(ids) == len(set(ids))
    assert all(sum(c[0] == kind for c in CATALOGUE) >= 15 for kind in ("resources", "values", "silent", "foreign"))


@pytest.mark.parametrize("kind,case_id,call,error,pattern", CATALOGUE, ids=[f"{c[0]}:{c[1]}" for c in CATALOGUE])
def test_bad_value_is_refused_with_one_line(monkeypatch, kind, case_id, call, error, pattern):
    monkeypatch.setenv("SRR_MEMORY_LIMIT", str(8 << 30))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(SrrError) as info:
            call()
    assert not caught, f"warning(s) before the error: {[str(w.message) for w in caught]}"
    exc, message = info.value, str(info.value)
    assert isinstance(exc, error), f"{type(exc).__name__}: {message}"
    assert "\n" not in message and message.strip() == message
    assert re.search(pattern, message), message
    tried("api_cases")
    tried(f"api_{kind}")


def test_no_system_memory_query_for_small_inputs(monkeypatch):
    """The size checks of the hot paths are arithmetic below the floor: no /proc read per call."""
    def refuse(*args, **kwargs):
        raise AssertionError("available_memory was queried for a small input")

    monkeypatch.setattr("srr.checks.available_memory", refuse)
    z = torch.nn.functional.normalize(torch.randn(256, 16), dim=1)
    y = torch.arange(256) % 5
    srr.rate_reduction(z, y, 0.5)
    srr.rate_reduction(z[None], y[None], 0.5)
    srr.compressed_rate(z, torch.softmax(torch.randn(256, 5), 1), 0.5)
    MCR2()(z, y)
    srr.subspace_compression(torch.randn(8, 10, 16), torch.randn(3, 16, 4), normalize=True)
    memberships(y)


def test_half_precision_dtype_computes_in_float32():
    """An explicit dtype=torch.float16 / bfloat16 computes in float32 (no Cholesky in half precision), as for
    half-precision input, instead of torch's NotImplementedError."""
    for half in (torch.float16, torch.bfloat16):
        r = srr.coding_rate(Z, dtype=half)
        assert r.dtype == torch.float32 and torch.equal(r, srr.coding_rate(Z))
        assert torch.equal(srr.rate_reduction(Z, Y, dtype=half), srr.rate_reduction(Z, Y))
        assert torch.equal(srr.subspace_compression(Z, U, dtype=half), srr.subspace_compression(Z, U))
        assert torch.equal(MCR2(dtype=half)(Z, Y), MCR2()(Z, Y))


def test_memberships_tolerance_is_the_stated_one():
    """Rows must sum to one within MEMBERSHIP_ROW_TOLERANCE + K·u: float32 softmax rows pass, 2e-4 off does not."""
    from srr.checks import MEMBERSHIP_ROW_TOLERANCE

    assert MEMBERSHIP_ROW_TOLERANCE == 1e-4
    ok = SOFT * (1 + 5e-5)
    assert torch.isfinite(srr.compressed_rate(Z, ok))
    assert torch.isfinite(srr.compressed_rate(Z, torch.softmax(torch.randn(20, 1000), 1)))
    with pytest.raises(ConfigError, match=r"off by 0.0002"):
        srr.compressed_rate(Z, SOFT * (1 + 2e-4))


def test_read_only_numpy_labels_work_without_a_warning():
    labels = (np.arange(20) % 3).astype(np.int64)
    labels.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = srr.rate_reduction(Z, labels)
        checked, k = check_labels(labels)  # the validator itself, as the data sources call it
    assert torch.equal(value, srr.rate_reduction(Z, Y))
    assert torch.equal(checked, Y) and k == 3


CHILD = """
import resource, torch, srr
from srr.errors import SrrError
z = torch.nn.functional.normalize(torch.randn(64, 8), dim=1)
y = torch.zeros(64, dtype=torch.long)
y[-1] = 10**9
for kwargs in ({}, {"num_classes": 10**9 + 1}):
    try:
        srr.rate_reduction(z, y, 0.5, **kwargs)
        print("NO ERROR")
    except SrrError as exc:
        print(type(exc).__name__ + ": " + str(exc))
print("peak_rss_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_label_of_1e9_refused_under_an_address_space_limit():
    """In a child limited to 2 GiB of address space (which the kernel would otherwise kill or torch fail at 23 GB),
    ``srr.rate_reduction`` with a label of 1e9 is refused with one line: as a corrupt label when K is inferred, as
    too large for the limit when ``num_classes`` asks for 1e9 classes; the child's peak memory stays small."""
    limit = 2 << 30

    def limit_address_space():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    src = str(Path(srr.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    env.pop("SRR_MEMORY_LIMIT", None)
    proc = subprocess.run([sys.executable, "-c", CHILD], preexec_fn=limit_address_space, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert re.fullmatch(r"ConfigError: label 1000000000 implies 1,000,000,001 classes for 64 samples .*", lines[0])
    assert re.fullmatch(r"ResourceError: rate_reduction: K = 1,000,000,001 classes \(num_classes=1000000001\) .*"
                        r"needs about [\d.]+ TiB, more than the [\d.]+ GiB this machine can give \(available memory\)",
                        lines[1])
    peak_kib = int(lines[2].split()[1])
    print(f"child peak memory under RLIMIT_AS = 2 GiB: {peak_kib / 1024:.0f} MiB")
    assert peak_kib * 1024 < limit
    tried("api_cases", 2)
    tried("api_resources", 2)
