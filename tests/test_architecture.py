"""The dependency arrows between the apps point one way: an app imports only the apps below it.

demo > compliance | vetting (independent of each other) > usage > allocations > systems >
organisations > core; config may import anything. The contract is `app-layers` under
[tool.importlinter] in pyproject.toml, checked by import-linter (`lint-imports` from a shell).
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def test_apps_import_only_the_apps_below_them():
    result = subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-cache", "--contract", "app-layers"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    report = result.stdout + result.stderr
    broken = set(re.findall(r"^(\S+) is not allowed to import (\S+):$", report, re.MULTILINE))
    if result.returncode and not broken:
        pytest.fail(f"lint-imports did not run:\n{report}")
    assert not broken, f"Imports against the layers:\n{report}"
    assert result.returncode == 0, report
