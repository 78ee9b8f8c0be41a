"""The HTML report in a real browser: headless Chromium loads ``report.html``; every image must decode (complete,
non-zero natural width) and no script error may be raised. ``make test`` installs Chromium from the Debian packages
when it is absent; the test skips only where it could not be installed, and fails on CI (``CI`` set) instead."""
import json
import os
import re
import shutil
import subprocess

import pytest

from srr.cli import main
from training_helpers import TINY

CHECK = """<script>
window.__srrErrors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  window.__srrErrors.push(t && t.tagName ? 'resource ' + t.tagName : 'script ' + e.message);
}, true);
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length;
  var pre = document.createElement('pre');
  pre.id = 'srr-check';
  pre.textContent = JSON.stringify({images: imgs.length, broken: broken, errors: window.__srrErrors,
                                    sections: document.querySelectorAll('h2').length});
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    path = chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("headless Chromium is not installed on CI; `make test` installs it (apt-get install chromium)")
        pytest.skip("headless Chromium is not installed (`make test` installs it with apt-get)")
    return path


def render(browser: str, page, tmp_path, screenshot=None) -> dict:
    """Load ``page`` with the checking script injected first; returns what the script found after ``load``."""
    text = page.read_text(encoding="utf-8")
    checked = tmp_path / f"checked-{page.name}"
    checked.write_text(re.sub(r"<head>", "<head>" + CHECK, text, count=1), encoding="utf-8")
    argv = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    out = subprocess.run(argv + ["--dump-dom", checked.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="srr-check">(.*?)</pre>', out.stdout, re.S)
    assert found, f"the page did not finish loading: {out.stderr[-500:]}"
    if screenshot is not None:
        subprocess.run(argv + ["--hide-scrollbars", "--window-size=1280,2400", f"--screenshot={screenshot}",
                               page.as_uri()], capture_output=True, timeout=120)
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.mark.slow
def test_the_report_loads_in_chromium_with_every_image_and_no_script_error(browser, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out)]) == 0
    assert main(["report", str(out), "--samples", "16", "--ansatz-samples", "16"]) == 0
    shot = tmp_path / "report.png"
    result = render(browser, out / "report.html", tmp_path, screenshot=shot)
    assert result["errors"] == [] and result["broken"] == 0
    assert result["images"] >= 4 and result["sections"] >= 4  # curves, layers, attention, ansatz
    from PIL import Image

    with Image.open(shot) as img:  # a real rendering: a page-sized picture with more than one colour
        assert img.size == (1280, 2400) and len(img.convert("L").getcolors(1 << 16) or []) > 10


def test_the_browser_check_sees_a_broken_image_and_a_script_error(browser, tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<html><head><title>x</title></head><body><h2>a</h2><img src="data:image/png;base64,AAAA">'
                    '<script>undefinedFunction();</script></body></html>', encoding="utf-8")
    result = render(browser, page, tmp_path)
    assert result["broken"] == 1 and result["images"] == 1
    assert any(e.startswith("script") for e in result["errors"]) and any(e == "resource IMG" for e in result["errors"])
