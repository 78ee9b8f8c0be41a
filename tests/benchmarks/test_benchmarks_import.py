"""Every script in ``benchmarks/`` imports with the current API and its argument parser answers ``--help``.

``benchmarks/`` is not a package: each script is loaded by path, with the folder on ``sys.path`` for the sibling
imports (``common``, ``contenders``, ``reference_crate``). The scripts' runs themselves take minutes; a tiny run of
each is listed in the commit that ported them to the training engine.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import sys

import pytest

from paths import BENCHMARKS

SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("*.py"))
# helper modules of the scripts: no command line, but what the scripts import from them
LIBRARIES = {"common": ["write_result", "time_side_by_side", "add_thread_option", "apply_threads"],
             "contenders": ["build", "compiled", "NAMES"],
             "reference_crate": ["AuthorsCRATE", "authors_twin"]}
# scripts whose import and --help take longer than 2 s, marked slow (none today: each takes < 0.3 s once torch and
# srr are imported)
SLOW: set[str] = set()


@pytest.fixture
def on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    # each script's own sibling imports resolve afresh, and none stays behind for the next test
    for name in list(LIBRARIES):
        monkeypatch.delitem(sys.modules, name, raising=False)


def load(stem: str):
    spec = importlib.util.spec_from_file_location(f"benchmarks_{stem}", BENCHMARKS / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_script_is_listed():
    assert set(SCRIPTS) >= set(LIBRARIES)
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("stem", sorted(LIBRARIES))
def test_helper_module_imports(stem, on_path):
    module = load(stem)
    missing = [name for name in LIBRARIES[stem] if not hasattr(module, name)]
    assert not missing, f"benchmarks/{stem}.py lacks {missing}"


@pytest.mark.parametrize("stem", [pytest.param(s, marks=pytest.mark.slow) if s in SLOW else s
                                  for s in SCRIPTS if s not in LIBRARIES])
def test_script_imports_and_parses_help(stem, on_path):
    module = load(stem)
    assert callable(getattr(module, "main", None)), f"benchmarks/{stem}.py has no main()"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exc:
        module.main(["--help"])
    assert exc.value.code == 0
    assert out.getvalue().startswith("usage:"), out.getvalue()[:200]
