"""The ``sparse:`` data source: sizes, sparsity, the signal model, and its refusals."""
import pytest
import torch

from srr.data import load_data, sparse_codes
from srr.errors import DataError
from srr.models.lista import random_dictionary


def test_codes_are_k_sparse_and_signals_are_their_images():
    data = load_data("sparse:n=500,d=10,atoms=30,k=3,noise=0,seed=2", task="sparse")
    assert (len(data.train_set), len(data.test_set)) == (400, 100)
    x, z = data.train_set.__getitems__(list(range(400)))
    assert x.shape == (400, 10) and z.shape == (400, 30)
    assert ((z != 0).sum(1) == 3).all()
    torch.testing.assert_close(x, z @ random_dictionary(10, 30, 2).T)
    assert data.model_overrides() == {"dim": 10, "atoms": 30, "dictionary_seed": 2}
    assert data.spec == "sparse:n=500,d=10,atoms=30,k=3,noise=0,seed=2"


def test_noise_has_the_stated_energy():
    clean, noisy = sparse_codes(4000, 16, 32, 2, 0.0, 1), sparse_codes(4000, 16, 32, 2, 0.5, 1)
    energy = (noisy.train_set.x - clean.train_set.x).square().sum(1).mean()
    assert float(energy) == pytest.approx(0.25, rel=0.05)


@pytest.mark.parametrize("spec,message", [
    ("sparse:k=10,atoms=5", "k=10 non-zeros do not fit 5 atoms"),
    ("sparse:n=1", "n must"),
    ("sparse:noise=-1", "noise must"),
])
def test_bad_specs_are_refused(spec, message):
    with pytest.raises(DataError, match=message):
        load_data(spec, task="sparse")


def test_the_source_is_not_image_data():
    with pytest.raises(DataError, match="not labelled images"):
        load_data("sparse")
