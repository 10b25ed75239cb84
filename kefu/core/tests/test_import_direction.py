"""Imports point one way (docs/architecture.md, "Apps and their direction"): the import-linter
contract in pyproject.toml places every module of kefu/ in one order, and no app imports from
one above it, directly or through others, in a function body or at the top of a module."""

import subprocess
import sys
import tomllib
from pathlib import Path

from django.conf import settings

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PYPROJECT = Path(settings.BASE_DIR) / "pyproject.toml"


def _lint_imports(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LINT_IMPORTS, "--config", str(config), "--no-cache"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _direction() -> dict:
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["id"] == "direction"]
    return contract


def test_no_app_imports_from_an_app_above_it():
    result = _lint_imports(PYPROJECT)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_the_order_runs_from_the_composition_root_down_to_core():
    """Core is below every app, so it may import none of them; every module has its place."""
    layers = _direction()["layers"]

    assert layers[0].startswith("settings : urls")
    assert layers[-3:] == ["accounts", "audit", "core"]
    assert _direction()["exhaustive"] is True


def test_only_tests_and_named_single_imports_are_exempt():
    """An exception names one importer and one imported module, so it goes away with that
    import (import-linter fails on an exception that no longer matches anything)."""
    for expression in _direction()["ignore_imports"]:
        if expression == "kefu.*.tests.** -> kefu.**":
            continue
        importer, imported = (part.strip() for part in expression.split("->"))
        assert "*" not in importer + imported, expression
        assert importer.split(".")[1] != "core", f"core is to import no app: {expression}"


def test_the_check_sees_an_import_that_runs_back_up(tmp_path):
    """The same contract upside down must break, naming a real import: the check reads the code
    (a wrong root package or an over-broad exception would make it pass on anything)."""
    contract = _direction()
    upside_down = tmp_path / "upside-down.ini"
    upside_down.write_text(
        "[importlinter]\nroot_package = kefu\n\n"
        "[importlinter:contract:upside-down]\n"
        "name = upside down\ntype = layers\ncontainers = kefu\n"
        "layers =\n" + "".join(f"    {layer}\n" for layer in reversed(contract["layers"]))
    )

    result = _lint_imports(upside_down)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "kefu.tickets is not allowed to import kefu.customers" in result.stdout
