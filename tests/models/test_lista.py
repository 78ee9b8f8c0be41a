"""LISTA: parameter counts, ISTA at initialisation, saving and loading; the MLP's activation field."""
import pytest
import torch

import srr
from srr.errors import ConfigError, DataError
from srr.models.lista import random_dictionary
from srr.principles import ista

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name,count", [("lista_nano", 64 * 32 + 64 * 64 + 8 * 64),
                                        ("lista_micro", 16 * (256 * 64 + 256 * 256) + 16 * 256)])
def test_parameter_counts(name, count):
    assert srr.models.parameter_count(srr.get_config(name)) == count
    with torch.device("meta"):
        assert srr.models.count_parameters(srr.create_model(name)) == count
    assert srr.models.get_entry(name).task == "sparse"


@pytest.mark.parametrize("tied", [True, False])
def test_lista_from_a_dictionary_is_ista(tied):
    model = srr.create_model("lista_nano", dim=12, atoms=20, depth=5, lambd=0.1, tied=tied, dictionary_seed=3)
    D = random_dictionary(12, 20, 3, torch.float64)
    assert torch.allclose(D.norm(dim=0), torch.ones(20, dtype=torch.float64))
    x = torch.randn(7, 12, dtype=torch.float64)
    codes = model.double().layer_codes(x)
    for t in (1, 3, 5):
        torch.testing.assert_close(codes[t - 1], ista(x, D, 0.1, t), atol=1e-6, rtol=1e-6)


def test_save_and_load_round_trip(tmp_path):
    model = srr.create_model("lista_nano", dictionary_seed=0)
    with torch.no_grad():
        model.thresholds.add_(0.01 * torch.arange(8.0).unsqueeze(1))
    model.save_pretrained(tmp_path / "m")
    back = srr.from_pretrained(tmp_path / "m")
    x = torch.randn(4, 32)
    torch.testing.assert_close(back(x), model(x))
    assert back.config.dictionary_seed == 0


def test_bad_inputs_are_refused():
    model = srr.create_model("lista_nano")
    with pytest.raises(DataError, match=r"\(batch, 32\)"):
        model(torch.zeros(2, 31))
    with pytest.raises(DataError, match="does not fit"):
        model.init_from_dictionary(torch.zeros(31, 64), 0.1)
    with pytest.raises(ConfigError, match="depth"):
        srr.create_model("lista_nano", depth=0)


def test_mlp_activation_is_gelu_or_relu_with_unchanged_sizes():
    assert srr.models.parameter_count(srr.get_config("mlp_nano")) == 150_016
    assert srr.models.parameter_count(srr.get_config("mlp_micro")) == 2_910_208
    relu, gelu = srr.create_model("mlp_nano"), srr.create_model("mlp_nano", activation="gelu")
    gelu.load_state_dict(relu.state_dict())
    x = torch.randn(3, 1, 8, 8)
    h = x.flatten(1)
    for layer in relu.layers[:-1]:
        h = torch.nn.functional.gelu(layer(h))
    torch.testing.assert_close(gelu(x), relu.layers[-1](h))
    assert not torch.allclose(gelu(x), relu(x))
    with pytest.raises(ConfigError, match="activation"):
        srr.create_model("mlp_nano", activation="tanh")
