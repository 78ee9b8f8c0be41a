"""Text data (byte tokenizer, text:PATH source) and the language-model commands: srr train for a language model, srr generate."""
import json
import math
import random

import pytest
import torch

from srr.cli import main
from srr.data import ByteTokenizer, load_data, load_text
from srr.errors import DataError, DataFileNotFoundError
from srr.training import parameter_groups
from srr.objectives.language import evaluate_lm

TINY_LM = ["--model", "crate_gpt_nano", "--set", "dim=32", "--set", "depth=2", "--set", "heads=2", "--set",
           "context=32", "--context", "32", "--batch-size", "8", "--steps", "40", "--eval-every", "20",
           "--eval-tokens", "2048", "--lr", "3e-3", "--no-progress"]


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = random.Random(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "his", "bed", "é", "über"]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 8))) for _ in range(1500)]
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_byte_tokenizer_round_trip():
    tok = ByteTokenizer()
    text = "héllo — 世界\n\ttabs"
    ids = tok.encode(text)
    assert ids == list(text.encode("utf-8")) and len(ids) == 23 and tok.vocab_size == 256
    assert tok.decode(ids) == text and tok.decode(torch.tensor(ids)) == text
    assert tok.decode([0xE4, 0xB8]) == "\ufffd"  # a cut multi-byte character decodes to U+FFFD, never raises
    with pytest.raises(DataError, match=r"\[0, 256\)"):
        tok.decode([65, 300])


def test_text_source_splits_the_last_tenth_for_validation(tmp_path):
    raw = bytes(range(256)) * 4 + b"\xff\xfe not utf-8"  # bytes are fine: no decoding happens
    path = tmp_path / "t.bin"
    path.write_bytes(raw)
    data = load_text(f"text:{path}")
    assert len(data.val) == round(len(raw) * 0.1) == 104 and len(data.train) + len(data.val) == len(raw)
    assert bytes(data.val.tolist()) == raw[-104:] and bytes(data.train.tolist()) == raw[:-104]
    assert data.train.dtype == torch.int64 and data.model_overrides() == {"vocab_size": 256}


def test_text_source_errors(tmp_path):
    with pytest.raises(DataFileNotFoundError, match="text file not found: .*nope.txt"):
        load_text(f"text:{tmp_path / 'nope.txt'}")
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(DataError, match="empty.txt is empty"):
        load_text(f"text:{tmp_path / 'empty.txt'}")
    (tmp_path / "short.txt").write_bytes(b"abc")
    with pytest.raises(DataError, match="too short"):
        load_text(f"text:{tmp_path / 'short.txt'}")
    with pytest.raises(DataError, match="is a folder"):
        load_text(f"text:{tmp_path}")
    with pytest.raises(DataError, match="needs a path"):
        load_text("text")
    with pytest.raises(DataError, match="gives text for language models"):
        load_data(f"text:{tmp_path / 'short.txt'}")  # an image caller never receives text
    with pytest.raises(DataError, match="gives labelled images"):
        load_text("digits")


def test_evaluation_is_mean_nats_per_token(corpus):
    data = load_text(f"text:{corpus}")

    class Uniform(torch.nn.Module):
        def forward(self, ids):
            return torch.zeros(*ids.shape, 256)

    model = Uniform()
    model.register_parameter("p", torch.nn.Parameter(torch.zeros(1)))
    assert evaluate_lm(model, data.val, context=32, max_tokens=500) == pytest.approx(math.log(256), abs=1e-5)


def test_train_lm_writes_metrics_model_and_generates_deterministically(tmp_path, capsys, corpus):
    out = tmp_path / "lm"
    code, stdout, err = run(capsys, "train", *TINY_LM, "--data", f"text:{corpus}", "--out", out, "--seed", 1)
    assert code == 0, err
    assert "bits/byte" in stdout
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [20, 40]
    assert all(r["val_bpb"] == pytest.approx(r["val_loss"] / math.log(2)) for r in rows)
    assert rows[-1]["tokens"] == 40 * 8 * 32 and rows[-1]["tokens_per_second"] > 0
    assert rows[-1]["val_bpb"] < rows[0]["val_bpb"] < 8.0  # learns something beyond the uniform 8 bits per byte
    summary = json.loads((out / "summary.json").read_text())
    assert summary["val_bpb"] == rows[-1]["val_bpb"] and summary["task"] == "lm" and summary["context"] == 32
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "crate_gpt_nano" and config["tokenizer"] == "bytes" and config["args"]["dim"] == 32
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"

    gen = ["generate", out, "--prompt", "the cat", "--tokens", 40, "--top-k", 20]
    a, b = run(capsys, *gen, "--seed", 3), run(capsys, *gen, "--seed", 3)
    c = run(capsys, *gen, "--seed", 4)
    assert a[0] == 0 and a[1] == b[1] and a[1] != c[1]
    assert a[1].startswith("the cat") and len(a[1].encode("utf-8")) >= 40 + 7
    greedy = run(capsys, "generate", out, "--prompt", "the cat", "--tokens", 40, "--temperature", 0, "--seed", 9)
    assert greedy[1] == run(capsys, "generate", out, "--prompt", "the cat", "--tokens", 40, "--top-k", 1)[1]


def test_parameter_groups_do_not_decay_tost_statistics():
    import srr

    model = srr.create_model("tost_gpt_nano", dim=16, depth=1, heads=2, context=8, layer_scale=1e-5)
    decay, no_decay = parameter_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in no_decay["params"]} >= {"blocks.0.attn.temp", "blocks.0.attn.denom_bias",
                                                         "blocks.0.gamma1"}
    assert "blocks.0.attn.qkv.weight" in {names[id(p)] for p in decay["params"]}


@pytest.mark.parametrize("argv,message", [
    (["train", "--objective", "lm"], "--objective lm needs --data text:PATH"),
    (["train", "--model", "gpt_nano", "--data", "digits"], "gives labelled images, not text"),
    (["train", "--model", "crate_nano", "--objective", "lm", "--data", "text:x"], "crate_nano is an image model"),
    (["train", "--model", "gpt_nano", "--objective", "classification"], "gpt_nano is a language model"),
    (["train", "--model", "gpt_nano", "--data", "text:x", "--epochs", "3"],
     "--epochs does not apply to --objective lm (it belongs to classification, dino, mcr2, mcr2_views, mse, simdino, sparse_coding)"),
    (["train", "--model", "gpt_nano", "--data", "text:/no/such.txt"], "text file not found: /no/such.txt"),
    (["train", "--model", "gpt_nano", "--data", "text:x", "--steps", "0"], "--steps must lie in [1, "),
    (["train", "--steps", "5"], "--steps does not apply to --objective classification (it belongs to lm)"),
    (["train", "--model", "gpt_nano", "--data", "text:x", "--objective", "mcr2"], "gpt_nano is a language model"),
    (["train", "--model", "gpt_nano", "--data", "text:x", "--eps", "0.5"],
     "--eps does not apply to --objective lm (it belongs to mcr2, mcr2_views, simdino)"),
    (["train", "--model", "gpt_nano", "--data", "text:x", "--mixup", "0.5"],
     "--mixup does not apply to --objective lm (it belongs to classification)"),
    (["generate", "/no/such/dir"], "holds no config.json"),
])
def test_lm_cli_errors_are_one_line(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_generate_refuses_image_models_and_bad_options(tmp_path, capsys, corpus):
    import srr

    srr.create_model("crate_nano", dim=16, depth=1, heads=2).save_pretrained(tmp_path / "img")
    code, _, err = run(capsys, "generate", tmp_path / "img")
    assert code == 2 and "not a language model" in err
    srr.create_model("gpt_nano", dim=16, depth=1, heads=2, context=8).save_pretrained(tmp_path / "lm")
    for flag, value, message in [("--temperature", -1, "temperature"), ("--top-k", 0, "top-k"),
                                 ("--tokens", -2, "--tokens")]:
        code, _, err = run(capsys, "generate", tmp_path / "lm", flag, value)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
