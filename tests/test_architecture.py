"""The layout rules of docs/architecture.md, checked on the source tree."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from segdil.models import MODELS

PACKAGE = Path(__file__).resolve().parent.parent / "segdil"
SOURCES = sorted(PACKAGE.rglob("*.py"))
OUTSIDE_MODELS = [p for p in SOURCES if PACKAGE / "models" not in p.parents]


def _rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def test_rf_analysis_imports_nothing_from_the_models():
    code = "import sys, segdil.rf; print(sorted(m for m in sys.modules if m.startswith('segdil.')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = eval(result.stdout)
    assert loaded and not [m for m in loaded if m.startswith("segdil.models")], loaded


@pytest.mark.parametrize("path", OUTSIDE_MODELS, ids=_rel)
def test_no_module_outside_the_models_names_a_model_family(path):
    """Registry names as string constants, model classes, or family modules: only segdil/models knows them."""
    names = set(MODELS)
    classes = {cls.__name__ for cls in MODELS.values()}
    families = {cls.__module__.rsplit(".", 1)[0] for cls in MODELS.values()}
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
            found.append(f"line {node.lineno}: {node.value!r}")
        elif isinstance(node, ast.Name) and node.id in classes or isinstance(node, ast.Attribute) and node.attr in classes:
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and node.module and (node.module in families or any(node.module.startswith(f + ".") for f in families)):
            found.append(f"line {node.lineno}: from {node.module} import ...")
    assert not found, f"{_rel(path)} names model families: {found}; read a capability of the model class instead (segdil/models/base.py)"


WRITES = [
    (re.compile(r"\bopen\([^)]*,\s*[\"'][wax]b?\+?[\"']"), "open(..., 'w')"),
    (re.compile(r"\.write_text\("), "write_text"),
    (re.compile(r"\.write_bytes\("), "write_bytes"),
    (re.compile(r"\bsavefig\("), "savefig("),
    (re.compile(r"\btorch\.save\("), "torch.save"),
]


@pytest.mark.parametrize("path", [p for p in SOURCES if p.name != "atomic.py"], ids=_rel)
def test_every_file_is_written_through_atomic(path):
    found = [f"line {i}: {what}" for i, line in enumerate(path.read_text().splitlines(), 1) for pattern, what in WRITES if pattern.search(line)]
    assert not found, f"{_rel(path)} writes a file outside segdil/atomic.py: {found}"
