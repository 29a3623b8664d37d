"""The documentation stands alone in a user's clone: every relative link in README.md and
docs/ resolves to a file of the repository (and a `#section` to a heading there), no text
points at documents the repository does not hold, and docs/api.md covers every operation
the schema has."""

import re
from pathlib import Path

import pytest
from graphql import build_schema

from tests.live_server import ROOT

DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), ROOT / "docker" / "README.md"])
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
MENTIONED_MD = re.compile(r"(?<![\w/.-])((?:\.\./|\./)?[\w./-]*[\w-]\.md)\b")
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)
SKIPPED_DIRS = {".git", ".venv", "node_modules", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


@pytest.fixture(autouse=True)
def clean_database() -> None:
    """These tests read files: no database (overrides conftest's fixture)."""


def prose(path: Path) -> str:
    """The document without its fenced code blocks (a `](` in code is no link)."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens
    ("The `crm` command" → `the-crm-command`, "Token rules (RFC 8725)" → `token-rules-rfc-8725`)."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for heading in HEADING.findall(prose(path)):
        base, n = slug(heading), 0
        while (candidate := base if n == 0 else f"{base}-{n}") in found:
            n += 1
        found.add(candidate)
    return found


def repository_files() -> set[str]:
    return {
        path.name
        for path in ROOT.rglob("*.md")
        if not SKIPPED_DIRS & set(path.relative_to(ROOT).parts)
    }


@pytest.mark.parametrize("document", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(document: Path) -> None:
    broken = []
    for target in LINK.findall(prose(document)):
        if SCHEME.match(target):
            continue  # a web address
        path_part, _, anchor = target.partition("#")
        file = (document.parent / path_part).resolve() if path_part else document
        if not file.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, broken


@pytest.mark.parametrize("document", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_document_refers_to_files_outside_the_repository(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    assert "../shared" not in text
    ours = repository_files()
    elsewhere = sorted({name for name in MENTIONED_MD.findall(text) if Path(name).name not in ours})
    assert not elsewhere, f"mentions documents the repository does not hold: {elsewhere}"


def test_the_api_document_covers_every_operation() -> None:
    schema = build_schema((ROOT / "schema.graphql").read_text(encoding="utf-8"))
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    missing = [
        f"{root.name}.{name}"
        for root in (schema.query_type, schema.mutation_type, schema.subscription_type)
        if root is not None
        for name in root.fields
        if f"`{name}(" not in api and f"`{name}`" not in api
    ]
    assert not missing, f"docs/api.md does not describe: {missing}"
    types = [
        name
        for name, kind in schema.type_map.items()
        if not name.startswith("__")
        and name not in {"Query", "Mutation", "Subscription", "String", "Int", "Float"}
        and name not in {"Boolean", "ID"}
        and kind.ast_node is not None
    ]
    unnamed = [name for name in types if not re.search(rf"\b{name}\b", api)]
    assert not unnamed, f"docs/api.md never names these schema types: {unnamed}"
