"""The docs name only things that exist: every relative link, and every path into the repository
(`hive/...`, `docs/...`, `tests/...`, `bench/...`, `.ci/...` and the top-level files) that
README.md, ARCHITECTURE.md or docs/*.md mentions, in prose or in code blocks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted([REPO / "README.md", REPO / "ARCHITECTURE.md", *(REPO / "docs").glob("*.md")])
TOP_FILES = ("README.md", "ARCHITECTURE.md", "pyproject.toml")

# [text](target): a Markdown link; targets with a scheme or only an anchor are not files.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# A path into the repository, wherever it appears.
REPO_PATH = re.compile(
    r"(?<![\w./~-])((?:hive|docs|tests|bench|\.ci)/[\w./-]*|(?:" + "|".join(TOP_FILES) + r"))"
)


def _links(text: str) -> list[str]:
    targets = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


# Signature domain tags ("hive/v1/frame", PROTOCOL.md) look like paths but are not.
DOMAIN_TAG = re.compile(r"^hive/v\d+/")


def _paths(text: str) -> list[str]:
    found = {m.rstrip(".,:;") for m in REPO_PATH.findall(text)}
    return sorted(p for p in found if not DOMAIN_TAG.match(p))


def test_every_doc_is_checked() -> None:
    names = {d.name for d in DOCS}
    assert {"README.md", "ARCHITECTURE.md", "PROTOCOL.md", "SIMULATOR.md"} <= names


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_relative_links_exist(doc: Path) -> None:
    missing = [t for t in _links(doc.read_text()) if not (doc.parent / t).exists()]
    assert missing == [], f"{doc.name} links to missing files: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_named_repository_paths_exist(doc: Path) -> None:
    missing = [p for p in _paths(doc.read_text()) if not (REPO / p).exists()]
    assert missing == [], f"{doc.name} names missing paths: {missing}"


def test_the_checks_find_what_they_should() -> None:
    text = "see [x](docs/NOPE.md), [web](https://a.b/c), [here](#top) and `hive/gone.py`."
    assert _links(text) == ["docs/NOPE.md"]
    assert _paths(text) == ["docs/NOPE.md", "hive/gone.py"]
    assert _paths("run .venv/bin/python bench/bench_sim.py, or ~/hive/x") == ["bench/bench_sim.py"]
