"""``srr report``: one self-contained page that parses, whose every image decodes, and that reuses its analyses."""
import base64
import io
from html.parser import HTMLParser

import pytest
import torch
from PIL import Image

import srr
from srr.cli import main
from srr.io import append_jsonl, atomic_write_json

pytestmark = pytest.mark.usefixtures("one_thread")

VOID = {"meta", "img", "br", "hr", "link", "input"}


class _Checker(HTMLParser):
    """Collects images, headings and external references; checks that every element is closed in order."""

    def __init__(self):
        super().__init__()
        self.stack, self.images, self.external, self.h2, self.errors = [], [], [], [], []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for key in ("src", "href"):
            if attrs.get(key, "").startswith(("http:", "https:", "//", "file:")):
                self.external.append(attrs[key])
        if tag not in VOID:
            self.stack.append(tag)
        self._in_h2 = tag == "h2"

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unbalanced </{tag}>")
        self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.h2.append(data)


def _check(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert not checker.errors and not checker.stack and not checker.external
    for src in checker.images:
        head, _, payload = src.partition(",")
        assert head == "data:image/png;base64"
        img = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
        img.load()  # decodes every pixel
        assert img.size[0] > 100 and img.size[1] > 100
    return checker


def fake_run(run_dir, name, **args):
    """A run folder as `srr train` writes it (model, config, metrics, summary), without the training."""
    torch.manual_seed(0)
    model = srr.create_model(name, image_size=8, channels=1, num_classes=10, **args)
    model.save_pretrained(run_dir, extra={"data": "digits"})
    for epoch in (1, 2, 3):
        append_jsonl(run_dir / "metrics.jsonl", {"epoch": epoch, "train_loss": 2.0 / epoch, "test_loss": 2.1 / epoch,
                                                 "test_accuracy": 0.3 * epoch, "seconds": float(epoch)})
    atomic_write_json(run_dir / "summary.json", {"test_accuracy": 0.9, "epochs": 3, "config": {"seed": 0}})


def test_report_of_a_crate_run(tmp_path, capsys):
    run_dir = tmp_path / "run"
    fake_run(run_dir, "crate_nano", dim=16, depth=2, heads=2)
    argv = ["report", str(run_dir), "--samples", "32", "--ansatz-samples", "32", "--index", "3"]
    assert main(argv) == 0
    checker = _check(run_dir / "report.html")
    assert checker.h2 == ["Training curves", "Layer by layer: compression and sparsity", "Attention maps",
                          "Circuits", "Feature ansatz and tight frames"]
    assert len(checker.images) == 8  # the circuits: composition, logit lens, W_QK per head
    assert (run_dir / "circuits" / "circuits.json").is_file()
    stamp = (run_dir / "ansatz" / "ansatz.json").stat().st_mtime_ns
    assert main(argv) == 0  # a second run reuses what the folder holds
    assert (run_dir / "ansatz" / "ansatz.json").stat().st_mtime_ns == stamp
    assert "test image 3" in (run_dir / "report.html").read_text()
    assert main(argv[:-1] + ["5"]) == 0  # another image: the attention maps are recomputed, the ansatz is not
    assert "test image 5" in (run_dir / "report.html").read_text()
    assert (run_dir / "ansatz" / "ansatz.json").stat().st_mtime_ns == stamp


def test_report_of_an_mlp_run_says_what_it_leaves_out(tmp_path, capsys):
    run_dir = tmp_path / "mlp"
    fake_run(run_dir, "mlp_nano", width=16)
    (run_dir / "metrics.jsonl").write_text((run_dir / "metrics.jsonl").read_text() + '{"epoch": 2, "tr')  # torn line
    assert main(["report", str(run_dir), "--ansatz-samples", "16", "--out", str(tmp_path / "r.html")]) == 0
    checker = _check(tmp_path / "r.html")
    assert checker.h2 == ["Training curves", "Feature ansatz and tight frames"]
    page = (tmp_path / "r.html").read_text()
    assert "mlp_nano has no layers of tokens" in page and "attention maps (mlp_nano" in page
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "run folder not found" in capsys.readouterr().err
