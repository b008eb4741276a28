"""The tiers of tests/conftest.py name tests that exist, with markers pyproject.toml registers."""

import ast
import tomllib
from pathlib import Path

from conftest import TIERS

TESTS = Path(__file__).parent


def test_every_test_a_tier_names_exists():
    defined = {path.name: {node.name for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.FunctionDef)}
               for path in TESTS.glob("test_*.py")}
    missing = []
    for marker, names in TIERS.items():
        for name in names:
            file, _, test = name.partition("::")
            if file not in defined or (test and test not in defined[file]):
                missing.append(f"{marker}: {name}")
    assert not missing, f"tests/conftest.py TIERS names tests that do not exist: {missing}"


def test_every_tier_is_registered():
    config = tomllib.loads((TESTS.parent / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    registered = {line.split(":")[0] for line in config["markers"]}
    assert set(TIERS) | {"book"} <= registered
    assert "--strict-markers" in config["addopts"]
