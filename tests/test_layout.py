"""The package's import rules, read from the source (the folder docstrings state them; this keeps them true).

tutor/ never imports the server or the lab; server/ never imports the lab; server/batching/ imports neither torch
nor HTTP (starlette, uvicorn, httpx, aiohttp), so its policies are tested with fakes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "miniserve"
HTTP = ("starlette", "uvicorn", "httpx", "aiohttp")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


RULES = [  # (folder, forbidden top-level names or package prefixes)
    ("tutor", ("miniserve.server", "miniserve.lab", *HTTP)),
    ("server", ("miniserve.lab",)),
    ("server/batching", ("torch", "miniserve.tutor", *HTTP)),
]


@pytest.mark.parametrize(("folder", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_imports_point_one_way(folder: str, forbidden: tuple[str, ...]) -> None:
    modules = _modules(folder)
    assert modules, folder
    bad = [(m.relative_to(PACKAGE).as_posix(), name) for m in modules for name in _imports(m)
           if any(name == f or name.startswith(f + ".") for f in forbidden)]
    assert bad == [], f"{folder}/ must not import {forbidden}: {bad}"


def test_the_rule_scanner_sees_imports_inside_functions(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("def f():\n    import torch\n    from miniserve.lab import loadgen\n")
    assert {"torch", "miniserve.lab"} <= _imports(src)
