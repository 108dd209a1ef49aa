"""The public surface: façades with tuple ``__all__``, and the layering rule."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("package", ["actors", "runtime"])
def test_public_package_has_tuple_all(package: str) -> None:
    module = importlib.import_module(package)
    exported = module.__all__
    assert isinstance(exported, tuple)
    for name in exported:
        assert hasattr(module, name), f"{package}.__all__ names missing {name!r}"


def test_actors_exports_are_sorted_and_unique() -> None:
    import actors

    assert list(actors.__all__) == sorted(set(actors.__all__))


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_actors_never_imports_runtime() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "actors").rglob("*.py"))
        if "runtime" in _imported_modules(path)
    ]
    assert offenders == []
