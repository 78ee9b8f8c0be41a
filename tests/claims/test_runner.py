"""``reproduce`` and ``srr reproduce``: outputs, caching, failures, refusals."""
import json
from pathlib import Path

import pytest

from srr.claims import Measured, list_claims, register_claim, reproduce, splice_readme
from srr.claims import base
from srr.claims.runner import README_BEGIN, README_END
from srr.cli import main
from srr.errors import ConfigError, DataError, RunFolderError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake():
    """Register claims for one test (run in this process: ``jobs=1``)."""
    added = []

    def add(name, fn, kind="shape", **kw):
        register_claim(name, title=f"{name} title", source="a test", published="published figure", kind=kind,
                       protocol={s: {"size": s} for s in base.SCALES}, cpu="cpu words", paper="paper words",
                       rule="the rule", **kw)(fn)
        added.append(name)

    yield add
    for name in added:
        base._CLAIMS.pop(name)


def test_results_table_and_page_are_written_and_a_failure_does_not_stop_the_others(fake, tmp_path):
    calls = []

    def good(ctx):
        calls.append(ctx.params["size"])
        return Measured([True] * ctx.seeds, "it held", plot={"title": "t", "x": "x", "y": "y",
                                                             "series": {"a": [[1, 2], [3.0, 4.0]]}})

    def bad(ctx):
        raise DataError("no such data here")

    fake("t-value", lambda ctx: Measured([0.40, 0.42, 0.44][:ctx.seeds], "τ measured"), kind="value", value=0.445)
    fake("t-bad", bad)
    fake("t-good", good)
    lines = []
    results = reproduce(["t-value", "t-bad", "t-good"], scale="tiny", seeds=3, out=tmp_path / "o", jobs=1,
                        progress=False, echo=lines.append)
    rows = results["claims"]
    assert rows["t-value"]["verdict"] == "reproduced" and rows["t-value"]["spread"]["low"] == pytest.approx(0.38)
    assert rows["t-bad"]["verdict"] == "failed" and "no such data here" in rows["t-bad"]["figure"]
    assert rows["t-good"]["verdict"] == "reproduced" and calls == ["tiny"]
    assert [line.split(":")[0] for line in lines] == ["t-value", "t-bad", "t-good"]
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    assert saved["claims"].keys() == rows.keys()
    table = (tmp_path / "o" / "claims.md").read_text()
    assert "| **t-value**: t-value title | published figure | 0.420 (spread 0.380 … 0.460)" in table
    assert "`srr reproduce t-good --scale tiny --seeds 3` |" in table
    assert table.endswith("\n\nVerdicts: 2 reproduced, 1 failed.\n")  # counted, not written by hand
    page = (tmp_path / "o" / "claims.html").read_text()
    assert "figures/t-good.png" in page and (tmp_path / "o" / "figures" / "t-good.png").stat().st_size > 1000
    assert json.loads((tmp_path / "o" / "run.json").read_text())["status"] == "1 failed"


def test_a_folder_is_one_reproductions_and_resume_reads_the_cached_measurements(fake, tmp_path):
    made = []

    def cached(ctx):
        value = ctx.step("shared/one", lambda: made.append(1) or {"v": 0.5})["v"]
        return Measured([value > 0] * ctx.seeds, f"v = {value}")

    fake("t-cached", cached)
    reproduce(["t-cached"], scale="tiny", out=tmp_path / "o", jobs=1, progress=False, echo=lambda s: None)
    with pytest.raises(RunFolderError, match="already holds another run"):
        reproduce(["t-cached"], scale="tiny", out=tmp_path / "o", jobs=1, progress=False, echo=lambda s: None)
    again = reproduce(["t-cached"], scale="tiny", out=tmp_path / "o", resume=True, jobs=1, progress=False,
                      echo=lambda s: None)
    assert made == [1] and again["claims"]["t-cached"]["figure"] == "v = 0.5"
    train = tmp_path / "t"
    train.mkdir()
    (train / "run.json").write_text('{"objective": "classification"}')
    with pytest.raises(RunFolderError, match="holds another kind of run"):
        reproduce(["t-cached"], scale="tiny", out=train, resume=True, jobs=1, progress=False)


def test_data_is_refused_where_it_enters(tmp_path):
    with pytest.raises(ConfigError, match="at --scale paper the papers' data are needed: variant-order needs "
                                          "--data cifar10:PATH"):
        reproduce(["variant-order"], scale="paper", out=tmp_path / "p")
    with pytest.raises(ConfigError, match="digits and synthetic data are built in"):
        reproduce(["variant-order"], scale="cpu", out=tmp_path / "p", data=["digits"])
    with pytest.raises(ConfigError, match="names idx twice"):
        reproduce(["layer-compression"], out=tmp_path / "p", data=["idx:/a", "idx:/b"])
    with pytest.raises(ConfigError, match=r"--seeds must lie in \[1, 100\], got 0"):
        reproduce(["variant-order"], seeds=0, out=tmp_path / "p")
    assert not (tmp_path / "p").exists()  # refused before the folder is made


def test_the_command_line_lists_refuses_and_reports(tmp_path, capsys):
    assert main(["reproduce", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in list_claims())
    assert main(["reproduce", "--all", "variant-order", "--out", str(tmp_path / "x")]) == 2
    assert "give claim names or --all, not both" in capsys.readouterr().err
    assert main(["reproduce", "no-such-claim", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown claim 'no-such-claim'" in err
    assert main(["reproduce", "crate-c-init", "--scale", "tiny", "--out", str(tmp_path / "c"), "--no-progress",
                 "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("crate-c-init: ") and "wrote" in out.splitlines()[-1]


def test_the_readme_table_is_the_generated_file_and_names_every_claim():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert README_BEGIN in readme and README_END in readme
    table = readme.split(README_BEGIN, 1)[1].split(README_END, 1)[0]
    missing = [n for n in list_claims() if f"**{n}**" not in table]
    assert not missing, f"README's claims table lacks {missing}: run `make claims`"
    assert splice_readme(f"a\n{README_BEGIN}\nold\n{README_END}\nb", "new\n") == f"a\n{README_BEGIN}\nnew\n" \
                                                                                 f"{README_END}\nb"
    with pytest.raises(ConfigError, match="markers"):
        splice_readme("no markers", "x")


def test_overwrite_starts_again_and_drops_the_cached_measurements(fake, tmp_path):
    made = []
    fake("t-once", lambda ctx: Measured([bool(ctx.step("k", lambda: made.append(1) or {"v": 1})["v"])], "ok"))
    for _ in range(2):
        reproduce(["t-once"], scale="tiny", out=tmp_path / "o", overwrite=True, jobs=1, progress=False,
                  echo=lambda s: None)
    assert made == [1, 1]  # the second run measured again: --overwrite removed work/


def test_an_unexpected_error_is_a_failed_row_and_the_others_still_run(fake, tmp_path):
    fake("t-bug", lambda ctx: [][1])  # an IndexError, not an SrrError
    fake("t-fine", lambda ctx: Measured([True], "fine"))
    results = reproduce(["t-bug", "t-fine"], scale="tiny", out=tmp_path / "o", jobs=1, progress=False,
                        echo=lambda s: None)
    bug = results["claims"]["t-bug"]
    assert bug["verdict"] == "failed" and bug["figure"].startswith("failed: IndexError: list index out of range")
    assert results["claims"]["t-fine"]["verdict"] == "reproduced"
    assert json.loads((tmp_path / "o" / "run.json").read_text())["status"] == "1 failed"


def test_an_interrupted_training_stops_the_reproduction_and_says_so(fake, tmp_path):
    from srr.training.engine import RunInterrupted

    def interrupted(ctx):
        raise RunInterrupted("stopped by SIGINT")

    fake("t-stop", interrupted)
    fake("t-after", lambda ctx: Measured([True], "never run"))
    with pytest.raises(RunInterrupted):
        reproduce(["t-stop", "t-after"], scale="tiny", out=tmp_path / "o", jobs=1, progress=False,
                  echo=lambda s: None)
    assert json.loads((tmp_path / "o" / "run.json").read_text())["status"] == "interrupted"
    assert not (tmp_path / "o" / "results.json").exists() or \
        "t-after" not in json.loads((tmp_path / "o" / "results.json").read_text())["claims"]


def test_resume_refuses_another_scale_and_data_no_claim_reads(fake, tmp_path):
    fake("t-a", lambda ctx: Measured([True], "a"))
    reproduce(["t-a"], scale="tiny", out=tmp_path / "o", jobs=1, progress=False, echo=lambda s: None)
    with pytest.raises(RunFolderError, match="at --scale tiny, not cpu"):
        reproduce(["t-a"], scale="cpu", out=tmp_path / "o", resume=True, jobs=1, progress=False)
    with pytest.raises(ConfigError, match="no claim named here reads cifar10 data at --scale cpu"):
        reproduce(["aot-snr"], scale="cpu", data=[f"cifar10:{tmp_path}"], out=tmp_path / "p", progress=False)
    with pytest.raises(ConfigError, match="does not exist"):
        reproduce(["layer-compression"], scale="cpu", data=[f"idx:{tmp_path / 'nowhere'}"], out=tmp_path / "q",
                  progress=False)


def test_the_command_of_a_row_names_the_data_of_its_own_scale():
    from srr.claims import claim_command

    assert claim_command("variant-order", "paper", None, {}) == "srr reproduce variant-order --scale paper --data " \
                                                                 "cifar10:DIR"
    assert claim_command("layer-compression", "paper", None, {"idx": "idx:/m"}) == \
        "srr reproduce layer-compression --scale paper --data folder:DIR"
    assert claim_command("layer-compression", "cpu", 5, {"idx": "idx:/m"}) == \
        "srr reproduce layer-compression --scale cpu --seeds 5 --data idx:/m"
    assert claim_command("aot-snr", "cpu", None, {"idx": "idx:/m"}) == "srr reproduce aot-snr --scale cpu"


def test_cached_measurements_are_keyed_by_the_data_used_and_the_revision(tmp_path):
    ctx = base.Context("c", "cpu", {"a": 1}, 1, tmp_path, {"idx": "idx:/m", "cifar10": "cifar10:/c"})
    before = ctx.digest("k")
    assert ctx.data_spec("idx") == "idx:/m" and ctx.digest("k") != before  # the data it reads key the cache
    other = base.Context("c", "cpu", {"a": 1}, 1, tmp_path, {"idx": "idx:/m"})
    other.data_spec("idx")
    assert other.digest("k") == ctx.digest("k")  # a --data it does not read changes nothing
    newer = base.Context("c", "cpu", {"a": 1}, 1, tmp_path, {"idx": "idx:/m"}, revision=2)
    newer.data_spec("idx")
    assert newer.digest("k") != ctx.digest("k")


@pytest.mark.slow
def test_worker_processes_run_real_claims_side_by_side(tmp_path):
    lines = []
    results = reproduce(["tssa-linear-cost", "crate-c-init", "aot-snr"], scale="tiny", out=tmp_path / "w", jobs=2,
                        progress=False, echo=lines.append)
    rows = results["claims"]
    assert set(rows) == {"tssa-linear-cost", "crate-c-init", "aot-snr"}
    assert all(r["verdict"] != "failed" for r in rows.values()) and all(r["cpu_seconds"] > 0 for r in rows.values())
    assert lines[2].startswith("tssa-linear-cost:")  # a timing runs alone, after the workers


def test_a_resumed_claim_counts_the_cost_of_its_cached_measurements(fake, tmp_path):
    def slow(ctx):
        def work():
            total = 0
            for i in range(3_000_000):
                total += i
            return {"v": total}
        return Measured([bool(ctx.step("k", work)["v"])], "ok")

    fake("t-cost", slow)
    first = reproduce(["t-cost"], scale="tiny", out=tmp_path / "o", jobs=1, progress=False, echo=lambda s: None)
    again = reproduce(["t-cost"], scale="tiny", out=tmp_path / "o", resume=True, jobs=1, progress=False,
                      echo=lambda s: None)
    a, b = first["claims"]["t-cost"], again["claims"]["t-cost"]
    assert a["cpu_seconds"] > 0.05 and b["cpu_seconds_this_run"] < a["cpu_seconds"] / 5
    assert b["cpu_seconds"] == pytest.approx(a["cpu_seconds"], rel=0.5)
