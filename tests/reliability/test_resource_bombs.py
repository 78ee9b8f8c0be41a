"""Sizes that the input or the machine cannot hold, given to the ``srr`` commands (issue: bounded resources): each is
refused with one line naming the value and the limit, before it is allocated, in a child process under an
address-space limit whose peak resident memory is measured and printed.

The cases are the hostile testers' (a ``config.json`` of width 1e9 or depth 1e6, ``--set dim=1e8``, ``--resize
100000``, a vocabulary of 1e9, a language-model batch of 1e8, ``srr synthetic --tokens 1e8 --d 1e4``, ``srr attention
--image-size 200000``, ``--randaugment 100000``) and further ones of the same class: sizes inside the fields' bounds
that the machine still cannot hold (the memory checks), and the other commands' sizes. Data files are the data-bomb
table's (``test_data_bombs.py``); the Python API's are in ``test_api_inputs.py``.
"""
from __future__ import annotations

import json

import pytest
import torch
from bounded_runs import GiB, MiB, ForkServer, assert_refused
from reliability_counts import tried

import srr

HEADROOM = 2 * GiB
MAX_EXTRA = 200 * MiB
TEXT = "text:{root}/corpus.txt"
LM = ["--model", "crate_gpt_nano", "--data", TEXT, "--set", "dim=32", "--set", "depth=1", "--set", "heads=2",
      "--steps", "2", "--no-progress", "--out", "{out}"]
TRAIN = ["--model", "crate_nano", "--set", "dim=16", "--set", "depth=1", "--set", "heads=2", "--epochs", "1",
         "--no-progress", "--out", "{out}"]

RUN = """
import sys
from srr.cli import main
raise SystemExit(main({argv!r}))
"""

# (id, argv with {root} (prepared files) and {out}, the one line it must print)
CASES = [
    # the hostile tester's
    ("config-json-dim-1e9", ["analyze", "{root}/dim"], r"config.json: crate_nano: dim must lie in \[1, 65536\], got 1000000000"),
    ("config-json-depth-1e6", ["analyze", "{root}/depth"], r"config.json: crate_nano: depth must lie in \[1, 4096\], got 1000000"),
    ("set-dim-1e8", ["train", *TRAIN, "--set", "dim=100000000"], r"crate_nano: dim must lie in \[1, 65536\], got 100000000"),
    ("resize-100000", ["train", *TRAIN, "--resize", "100000"], r"--resize must lie in \[0, 16384\], got 100000"),
    ("set-vocab-1e9", ["train", *LM, "--set", "vocab_size=1000000000"],
     r"crate_gpt_nano: vocab_size must lie in \[1, 16777216\], got 1000000000"),
    ("lm-batch-1e8", ["train", *LM, "--batch-size", "100000000"],
     r"training with --batch-size 100000000 .* needs about [\d.]+ TiB, more than the [\d.]+ GiB"),
    ("synthetic-tokens-1e8", ["synthetic", "--tokens", "100000000", "--d", "10000", "--out", "{out}"],
     r"--tokens must lie in \[1, 16777216\], got 100000000"),
    ("attention-image-size-200000", ["attention", "crate_nano", "--image-size", "200000", "--out", "{out}"],
     r"--image-size must lie in \[1, 32768\], got 200000"),
    ("randaugment-100000", ["train", *TRAIN, "--randaugment", "100000"], r"--randaugment must lie in \[0, 16\], got 100000"),
    # inside the fields' bounds, beyond the machine
    ("resize-16000", ["train", *TRAIN, "--resize", "16000"],
     r"building crate_nano \(its parameters\) needs about [\d.]+ GiB, more than the [\d.]+ GiB"),
    ("config-json-wide-and-deep", ["analyze", "{root}/wide"],
     r"building crate_nano \(its parameters\) needs about [\d.]+ TiB"),
    ("vocab-16m-width-64k", ["train", *LM, "--set", "vocab_size=16777216", "--set", "dim=65536"],
     r"building crate_gpt_nano \(its parameters\) needs about [\d.]+ TiB"),
    ("image-batch-2e9", ["train", *TRAIN, "--batch-size", "2000000000"], r"training with --batch-size 2000000000 .* needs about"),
    ("lm-context-65536-batch-4096", ["train", *LM, "--set", "context=65536", "--batch-size", "4096"],
     r"training with --batch-size 4096 .*needs about [\d.]+ GiB"),
    ("synthetic-tokens-1e7", ["synthetic", "--tokens", "10000000", "--d", "10000", "--out", "{out}"],
     r"8 token sets of 10000000 tokens in 10000 dimensions needs about [\d.]+ TiB"),
    ("attention-image-size-30000", ["attention", "crate_nano", "--image-size", "30000", "--out", "{out}"],
     r"attention maps at --image-size 30000 needs about [\d.]+ TiB"),
    ("a-billion-patches", ["train", *TRAIN, "--set", "image_size=65536", "--set", "patch_size=2"],
     r"building crate_nano \(its parameters\) needs about [\d.]+ GiB"),
    ("heads-beyond-width", ["train", *TRAIN, "--set", "heads=65536"], r"heads = 65536 exceeds dim = 16"),
    ("redunet-config-json", ["report", "{root}/redunet"], r"building redunet \(its parameters\) needs about [\d.]+ TiB"),
    ("redunet-wide", ["redunet", "--arch", "conv", "--layers", "4096", "--channels", "4096", "--no-progress", "--out",
                      "{out}"], r"needs about [\d.]+ TiB"),
    ("generate-tokens-1e12", ["generate", "{root}/lm", "--tokens", "1000000000000"],
     r"--tokens must lie in \[0, 1048576\], got 1000000000000"),
    ("workers-10000", ["train", *TRAIN, "--workers", "10000"], r"--workers must lie in \[0, 256\], got 10000"),
    ("accumulate-1e9", ["train", *TRAIN, "--accumulate", "1000000000"], r"--accumulate must lie in \[1, 65536\]"),
    ("set-value-nested-100k", ["train", *TRAIN, "--set", "dim=" + "[" * 100_000], r"--set dim: a value of 100,000"),
    # the second pass (test_newer_commands.py): the newer commands' sizes
    ("convert-npz-deflate-bomb", ["convert", "{root}/bomb.npz", "{out}"],
     r"bomb.npz: 1 array\(s\) of 1,342,177,280 bytes .*needs about 2.5 GiB, more than the [\d.]+ GiB"),
    ("export-example-of-8192-pixels", ["export", "{root}/big_images", "--out", "{out}.onnx"],
     r"an export example of 2 image\(s\) of 1 x 8192 x 8192 \(--batch\) needs about 4.0 GiB, more than"),
    ("predict-recorded-resize-1e5", ["predict", "{root}/resize", "{root}/digit.png"],
     r"preprocessing.resize must lie in \[0, 16384\], got 100000"),
]

_PEAKS: list[tuple[str, float, str]] = []


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("bombs")
    (root / "corpus.txt").write_text("the cat sat on the mat\n" * 3200)  # 73,600 bytes: longer than 65,536
    torch.manual_seed(0)
    model = srr.create_model("crate_nano", dim=16, depth=1, heads=2)
    for name, change in (("dim", {"dim": 10**9}), ("depth", {"depth": 10**6}),
                         ("wide", {"dim": 65536, "depth": 4096, "heads": 4})):
        model.save_pretrained(root / name)
        config = json.loads((root / name / "config.json").read_text())
        config["args"].update(change)
        (root / name / "config.json").write_text(json.dumps(config))
    srr.create_model("gpt_nano", dim=16, depth=1, heads=2, context=16).save_pretrained(root / "lm")
    _second_pass_files(root, model)
    net = srr.ReduNet(num_classes=2, layers=1, channels=4)
    net.build(torch.randn(8, 4), torch.arange(8) % 2)
    net.save(root / "redunet")
    config = json.loads((root / "redunet" / "config.json").read_text())
    config["args"].update(num_classes=1 << 20, layers=4096, channels=4096)
    (root / "redunet" / "config.json").write_text(json.dumps(config))
    return root


def _second_pass_files(root, model) -> None:
    """A Flax .npz of 1.5 MB whose one member inflates to 1.25 GiB (deflate at its ratio limit), a saved model of
    8192-pixel images in 1024-pixel patches (16 MB of weights, a 4 GiB export example), a recorded resize of 1e5."""
    import io
    import zipfile

    import numpy as np
    from PIL import Image

    n = (1280 << 20) // 4
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (n,)})
    with zipfile.ZipFile(root / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as zf, \
            zf.open("embedding/kernel.npy", "w", force_zip64=True) as fh:
        fh.write(header.getvalue())
        chunk = bytes(64 << 20)
        for _ in range(n * 4 // len(chunk)):
            fh.write(chunk)
    srr.create_model("crate_nano", dim=2, depth=1, heads=1, image_size=8192, patch_size=1024, channels=1,
                     num_classes=2, patch_norm=False).save_pretrained(root / "big_images")
    model.save_pretrained(root / "resize")  # save_pretrained itself refuses such a record: written by hand
    config = json.loads((root / "resize" / "config.json").read_text())
    config["preprocessing"] = {"image_size": 8, "channels": 1, "mean": [0.5], "std": [0.25], "resize": 100000}
    (root / "resize" / "config.json").write_text(json.dumps(config))
    Image.new("L", (8, 8)).save(root / "digit.png")


@pytest.fixture(scope="module")
def server(request):
    with ForkServer(preload=("srr.cli", "srr.analysis", "srr.training", "sklearn.datasets")) as srv:
        idle = srv.run("pass", HEADROOM)
        assert idle.returncode == 0, idle.stderr
        srv.idle_peak = idle.peak
        yield srv
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if reporter is None or capture is None or not _PEAKS:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"\nresource bombs: peak resident memory of each child (idle: {srv.idle_peak / MiB:.0f} "
                            f"MiB; address-space limit: its mapping + {HEADROOM / GiB:.0f} GiB)")
        for case, peak, line in _PEAKS:
            reporter.write_line(f"  {case:30s} {peak:5.0f} MiB  {line}")


@pytest.mark.parametrize("case,argv,pattern", CASES, ids=[c[0] for c in CASES])
def test_size_is_refused_before_it_is_allocated(case, argv, pattern, root, server, tmp_path):
    argv = [a.format(root=root, out=tmp_path / "out") for a in argv]
    outcome = server.run(RUN.format(argv=argv), HEADROOM, timeout=120)
    tried("resource_bomb_cases")
    line = assert_refused(outcome, pattern)
    _PEAKS.append((case, outcome.peak / MiB, line.replace(str(root), "…").replace(str(tmp_path), "…")[:150]))
    assert outcome.peak - server.idle_peak < MAX_EXTRA, f"peak {outcome.peak / MiB:.0f} MiB"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # nothing written
