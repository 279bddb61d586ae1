"""The docs point at code that exists: every `path.py:name` in docs/architecture.md's
"Where is…" table names a module and a definition in it (a class's attribute as `Class.attr`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import ROOT

ARCHITECTURE = ROOT / "docs" / "architecture.md"
PACKAGE = ROOT / "marketplace"


def _where_is() -> list[tuple[str, list[str]]]:
    section = ARCHITECTURE.read_text().split("## Where is…", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith(("| behaviour", "|---")):
            continue
        cells = line.split(" | ")
        rows.append((cells[0].strip("| "), re.findall(r"`([^`]+)`", cells[-1])))
    return rows


def _defined(path: Path) -> set[str]:
    """Top-level names of a module, and Class.attribute for attributes of its classes."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                names |= {f"{node.name}.{item.name}" for item in node.body
                          if isinstance(item, ast.FunctionDef)}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def test_the_where_is_table_names_code_that_exists() -> None:
    rows = _where_is()
    assert len(rows) >= 20
    for behaviour, refs in rows:
        assert refs, behaviour
        module = None
        for ref in refs:
            if ".py" in ref:
                path_text, _, name = ref.partition(":")
                module = PACKAGE / path_text
                assert module.exists(), (behaviour, ref)
            else:
                name = ref  # a further name in the module last named on the row
            if name:
                assert module is not None, (behaviour, ref)
                assert name in _defined(module), (behaviour, ref)
