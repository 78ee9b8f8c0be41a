"""The documentation: self-contained, with links, commands and model names that exist."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
SPAN = re.compile(r"`([^`\n]+)`")


def _code(text: str) -> list[str]:
    """The code of a Markdown page: fenced blocks, indented blocks and inline code spans."""
    blocks = FENCE.findall(text)
    rest = FENCE.sub("", text)
    indented = [line for line in rest.splitlines() if line.startswith("    ") and line.strip()]
    return blocks + indented + SPAN.findall(rest)


def test_the_pages_exist():
    names = {p.name for p in DOCS}
    for name in ("index.md", "conventions.md", "measures.md", "operators.md", "models.md", "training.md", "data.md",
                 "analysis.md", "cli.md", "results.md", "reliability.md"):
        assert name in names, f"docs/{name} is missing"


def test_nothing_points_to_the_reference_sheet_outside_the_repository():
    files = [ROOT / "README.md", *sorted((ROOT / "src" / "srr").rglob("*")), *sorted((ROOT / "docs").rglob("*"))]
    offenders = []
    for path in files:
        if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".pyc", ".png"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for needle in ("REFERENCE", "../shared"):
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert not offenders, offenders


def test_the_readme_is_a_landing_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 220, f"README.md has {len(lines)} lines; move details into docs/"
    assert "(docs/index.md)" in "\n".join(lines), "README.md does not link the map of the docs"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_stays_in_the_repository_and_exists(page):
    text = page.read_text(encoding="utf-8")
    targets = LINK.findall(FENCE.sub("", text))
    for target in targets:
        assert "://" not in target and not target.startswith("mailto:"), f"{page.name} links outside: {target}"
        path = target.split("#", 1)[0]
        if not path:  # an anchor on the same page
            continue
        resolved = (page.parent / path).resolve()
        assert resolved.is_relative_to(ROOT), f"{page.name} links outside the repository: {target}"
        assert resolved.exists(), f"{page.name} links to a missing file: {target}"


def test_every_srr_command_named_in_the_docs_exists():
    from srr.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    commands = set(sub.choices)
    named = set()
    for page in PAGES:
        for code in _code(page.read_text(encoding="utf-8")):
            named.update(re.findall(r"(?:^|[\s`(])srr ([a-z][a-z0-9_-]*)", code, re.M))
    cli = {m for code in _code((ROOT / "docs" / "cli.md").read_text(encoding="utf-8"))
           for m in re.findall(r"(?:^|[\s`(])srr ([a-z][a-z0-9_-]*)", code, re.M)}
    assert commands <= cli, f"docs/cli.md does not show {sorted(commands - cli)}"
    assert named <= commands, f"not srr sub-commands: {sorted(named - commands)}"


def test_every_model_named_in_the_model_docs_is_registered():
    from srr.models import list_models

    registered = set(list_models())
    prefixes = {n.split("_")[0] for n in registered}
    sizes = {n.rsplit("_", 1)[-1] for n in registered if "_" in n}
    text = (ROOT / "docs" / "models.md").read_text(encoding="utf-8")
    named = set()
    for span in SPAN.findall(text):
        if re.fullmatch(r"[a-z][a-z0-9_]*", span):
            parts = span.split("_")
            if span in registered or (len(parts) > 1 and parts[0] in prefixes and parts[-1] in sizes):
                named.add(span)
    assert len(named) >= 50, f"docs/models.md names only {len(named)} models"
    assert named <= registered, f"docs/models.md names unregistered models: {sorted(named - registered)}"
