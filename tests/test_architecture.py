"""The shape of the package: a pure core, curated exports."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import driftline

PACKAGE = Path(driftline.__file__).parent
CORE = ("monitors", "models")
FORBIDDEN_IN_CORE = {
    "confluent_kafka",
    "faust",
    "prometheus_client",
    "os",
    "time",
    "datetime",
    "socket",
    "subprocess",
    "driftline.streams",
    "driftline.cli",
    "driftline.settings",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("sub", CORE)
def test_core_does_no_io(sub: str) -> None:
    files = sorted((PACKAGE / sub).rglob("*.py"))
    assert files, f"driftline/{sub} has no modules"
    for path in files:
        for name in _imports(path):
            for bad in FORBIDDEN_IN_CORE:
                assert name != bad and not name.startswith(bad + "."), f"{path}: imports {name}"


def _isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions, each alphabetical (ruff's RUF022 order)."""
    constant = name.isupper() and len(name) > 1  # ruff counts a lone capital as a class name
    return (0 if constant else 1 if name[:1].isupper() else 2, name)


def test_module_exports_are_sorted_and_real() -> None:
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="driftline."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        exported = getattr(module, "__all__", None)
        if exported is None:
            continue
        assert list(exported) == sorted(exported, key=_isort_key), f"{info.name}.__all__ order"
        for name in exported:
            assert hasattr(module, name), f"{info.name}.__all__ names missing {name}"


def test_modules_stay_readable() -> None:
    for path in PACKAGE.rglob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines <= 500, f"{path} has {lines} lines: split it by concept"
