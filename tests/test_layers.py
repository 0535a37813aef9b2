"""Layers import one way: flows → tasks → estimator_core. Read from the source (every import
statement, those inside functions included), so a lazy import cannot slip past."""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def imports(package: str) -> list[tuple[str, str, bool]]:
    """(file, imported module, names a private symbol) for every import in ``package``."""
    found = []
    for folder, _dirs, files in os.walk(os.path.join(ROOT, package)):
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(folder, name)
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found += [(path, alias.name, False) for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    private = any(a.name.startswith("_") for a in node.names)
                    found.append((path, node.module, private))
    return found


def top(module: str) -> str:
    return module.split(".")[0]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("estimator_core", {"prefect", "mlflow", "pydantic", "tasks", "flows"}),
        ("tasks", {"flows"}),
    ],
)
def test_layers_import_one_way(package, forbidden):
    wrong = [
        f"{os.path.relpath(path, ROOT)} imports {module}"
        for path, module, _ in imports(package)
        if top(module) in forbidden
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("package", ["estimator_core", "tasks", "flows"])
def test_no_private_names_are_imported_from_another_package(package):
    wrong = [
        f"{os.path.relpath(path, ROOT)} imports a private name from {module}"
        for path, module, private in imports(package)
        if private
        and top(module) in {"estimator_core", "tasks", "flows"}
        and top(module) != package
    ]
    assert not wrong, "\n".join(wrong)
