"""The test suite's own layout: shared code lives in tests/helpers, never in test
modules or conftest files, so no module under tests/ imports either of those."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
IMPORT_CALLS = {"import_module", "__import__"}


def forbidden(module: str) -> bool:
    """Whether a dotted module name is, or lies inside, a test module or a conftest."""
    return any(part == "conftest" or part.startswith("test_") for part in module.split("."))


def imported_modules(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, module) for every module an import statement or an import call names;
    `from package import name` yields package.name, as name may be a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            package = "." * node.level + (node.module or "")
            if forbidden(package):
                yield node.lineno, package
                continue
            for alias in node.names:
                yield node.lineno, f"{package.rstrip('.')}.{alias.name}".lstrip(".")
        elif isinstance(node, ast.Call) and node.args:
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else None
            if isinstance(function, ast.Name):
                name = function.id
            first = node.args[0]
            if (
                name in IMPORT_CALLS
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                yield node.lineno, first.value


def test_no_module_imports_a_test_module_or_a_conftest() -> None:
    files = sorted(TESTS.rglob("*.py"))
    assert TESTS / "conftest.py" in files
    assert Path(__file__).resolve() in files
    problems = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, module in imported_modules(tree):
            if forbidden(module):
                where = path.relative_to(ROOT)
                problems.append(
                    f"{where}:{line}: imports {module}; move what it needs to tests/helpers/"
                )
    assert problems == [], "\n".join(problems)
