"""The sparse-coding report: iterations saved, the settings' checks, and the command."""
import json

import pytest

from srr.cli import main
from srr.errors import ConfigError
from srr.principles import SparseCodingSettings
from srr.principles.sparse_coding import iterations_to_reach

pytestmark = pytest.mark.usefixtures("one_thread")


def test_iterations_to_reach():
    curve = [-1.0, -2.0, -4.0, -3.0, -8.0]
    assert [iterations_to_reach(curve, t) for t in (-0.5, -2.0, -3.5, -8.0, -9.0)] == [1, 2, 3, 5, None]


def test_settings_are_checked():
    assert SparseCodingSettings(depths=" 8, 2,2").depth_list() == [2, 8]
    for bad, message in (({"depths": "0"}, "depth must"), ({"depths": ""}, "depths must list"),
                         ({"k": 70}, "do not fit 64 atoms")):
        with pytest.raises(ConfigError, match=message):
            SparseCodingSettings(**bad)


@pytest.mark.slow
def test_sparse_coding_command(tmp_path, capsys):
    out = tmp_path / "sc"
    assert main(["sparse-coding", "--out", str(out), "--n", "600", "--d", "8", "--atoms", "16", "--k", "2",
                 "--iterations", "60", "--depths", "1,3", "--epochs", "3", "--crate-dim", "8",
                 "--crate-tokens", "16"]) == 0
    shown = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert shown == {"sparse_coding.json", "sparse_coding.png", "crate_ista.png"}
    report = json.loads((out / "sparse_coding.json").read_text())
    assert [r["depth"] for r in report["lista"]] == [1, 3] and len(report["ista"]["nmse_db"]) == 60
    for row in report["lista"]:  # at initialisation LISTA is ISTA with as many iterations
        assert row["nmse_db_init"] == pytest.approx(row["ista_nmse_db_same_depth"], abs=1e-3)
    assert report["crate_block"]["max_abs_difference"] < 1e-5
    assert "CRATE's ISTA block" in capsys.readouterr().out


def test_sizes_beyond_the_memory_are_refused_before_anything_is_drawn(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SRR_MEMORY_LIMIT", str(64 << 20))
    assert main(["sparse-coding", "--out", str(tmp_path / "a"), "--n", "1000000", "--atoms", "4096"]) == 2
    assert main(["sparse-coding", "--out", str(tmp_path / "b"), "--crate-dim", "4096", "--crate-tokens", "100000",
                 "--n", "100", "--iterations", "1", "--depths", "1", "--epochs", "1"]) == 2
    assert main(["denoise", "--out", str(tmp_path / "c"), "--samples", "4000000", "--d", "4096", "--rank", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all("needs about" in line and "available memory" in line for line in err), err
    assert "LISTA and the codes of 1000000 signals" in err[0] and "CRATE block study" in err[1]
    assert not any((tmp_path / name).exists() for name in "abc")
