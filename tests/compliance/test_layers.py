"""compliance and vetting are separate layers above usage: compliance reads the declared plan
from the allocation, never from the application."""

import ast
from pathlib import Path

COMPLIANCE = Path(__file__).resolve().parents[2] / "compliance"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_compliance_never_imports_vetting():
    offenders = {
        str(path.relative_to(COMPLIANCE)): sorted(
            name for name in _imported_modules(path) if name.split(".")[0] == "vetting"
        )
        for path in COMPLIANCE.rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}
