"""Synthetic sparse codes over a random dictionary: the data of LISTA (``--data sparse:…``, task ``sparse``).

    D = random_dictionary(d, atoms, seed)        (d × atoms, N(0, 1) entries, unit-norm columns)
    z: exactly k non-zero entries, on a uniformly random support, each N(0, 1)
    x = D z + σ n,   n ~ N(0, I/d)                (so E‖σ n‖² = σ²)

``--data sparse:n=10000,d=32,atoms=64,k=4,noise=0.01,seed=0`` draws n pairs (x, z) and splits them 80/20 into train
and test (seeded). Items are rows: ``train_set.__getitems__(idx)`` returns ``(x (b, d), z (b, atoms))`` in float32.
The data tells the model its sizes and dictionary: ``model_overrides()`` gives ``dim``, ``atoms`` and
``dictionary_seed`` (a LISTA then starts as ISTA on this very dictionary).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..checks import check_int, check_memory, check_number
from ..errors import DataError
from ..models.lista import random_dictionary
from .sources import register_source
from .spec import Option
from .splits import seeded_split

__all__ = ["SparseCodes", "sparse_codes", "CodePairs"]


class CodePairs(Dataset):
    """Signals x (n, d) and their codes z (n, atoms); ``__getitems__`` returns one batch of both."""

    def __init__(self, x: Tensor, z: Tensor):
        self.x, self.z = x, z

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], self.z[i]

    def __getitems__(self, indices):
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.x[idx], self.z[idx]


@dataclass
class SparseCodes:
    """A drawn data set of sparse codes: the dictionary and the train/test pairs."""

    spec: str
    dictionary: Tensor  # (d, atoms)
    train_set: CodePairs
    test_set: CodePairs
    k: int
    noise: float
    seed: int

    name = "sparse"

    @property
    def d(self) -> int:
        return self.dictionary.shape[0]

    @property
    def atoms(self) -> int:
        return self.dictionary.shape[1]

    def model_overrides(self) -> dict:
        return {"dim": self.d, "atoms": self.atoms, "dictionary_seed": self.seed}


def sparse_codes(n: int = 10000, d: int = 32, atoms: int = 64, k: int = 4, noise: float = 0.01, seed: int = 0,
                 test_fraction: float = 0.2, spec: str | None = None) -> SparseCodes:
    """Draw ``n`` pairs (x, z) as in the module docstring (every value checked, the memory first)."""
    n = check_int(n, "n", low=2, high=1 << 30, error=DataError)
    d = check_int(d, "d", low=1, high=1 << 16, error=DataError)
    atoms = check_int(atoms, "atoms", low=1, high=1 << 16, error=DataError)
    k = check_int(k, "k", low=1, high=atoms, error=DataError)
    noise = check_number(noise, "noise", low=0.0, high=1e6, error=DataError)
    seed = check_int(seed, "seed", low=0, high=2**63 - 1, error=DataError)
    test_fraction = check_number(test_fraction, "test_fraction", low=0.0, high=1.0, low_open=True, high_open=True,
                                 error=DataError)
    check_memory(16 * n * (d + atoms) + 8 * d * atoms, f"{n} sparse codes over {atoms} atoms in {d} dimensions")
    D = random_dictionary(d, atoms, seed)
    g = torch.Generator().manual_seed(seed + 1)
    support = torch.rand(n, atoms, generator=g).argsort(dim=1)[:, :k]
    z = torch.zeros(n, atoms).scatter_(1, support, torch.randn(n, k, generator=g))
    x = z @ D.T + noise * torch.randn(n, d, generator=g) / d**0.5
    tr, te = seeded_split(n, test_fraction, seed)
    if len(tr) == 0 or len(te) == 0:
        raise DataError(f"n={n} is too small for a train and a test split")
    text = spec or f"sparse:n={n},d={d},atoms={atoms},k={k},noise={noise:g},seed={seed}"
    return SparseCodes(text, D, CodePairs(x[tr], z[tr]), CodePairs(x[te], z[te]), k, noise, seed)


#: the options of ``--data sparse:...``, each range-checked where it is parsed
OPTIONS = {
    "n": Option(int, 10000, low=2, high=1 << 30), "d": Option(int, 32, low=1, high=1 << 16),
    "atoms": Option(int, 64, low=1, high=1 << 16), "k": Option(int, 4, low=1, high=1 << 16),
    "noise": Option(float, 0.01, low=0.0, high=1e6), "seed": Option(int, 0, low=0, high=2**63 - 1),
}


@register_source("sparse", "k-sparse codes over a random unit-norm dictionary, x = D z + noise "
                           "(sparse:n=10000,d=32,atoms=64,k=4,noise=0.01,seed=0)", options=OPTIONS, task="sparse")
def _load(spec) -> SparseCodes:
    o = dict(spec.options)
    if o["k"] > o["atoms"]:
        raise DataError(f"{spec.text}: k={o['k']} non-zeros do not fit {o['atoms']} atoms")
    return sparse_codes(o["n"], o["d"], o["atoms"], o["k"], o["noise"], o["seed"], spec=spec.text)
