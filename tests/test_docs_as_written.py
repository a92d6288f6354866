"""The newcomer's path, as written: after the README's set-up command (`make demo`) alone, the quick
start and every tutorial run block after block in one terminal each, and print what the pages show.

"After the set-up alone" is emulated on the test's environment: the terminal starts with a bare
PATH (no segdil, no python of the venv until a page activates it), and a ``sitecustomize`` hides
every installed package that ``make demo`` would not have installed (the closure of segdil's
requirements with the extras of the Makefile's ``install`` target), so a page that needs the dev
extra, or an extra the set-up leaves out, fails here as it would for a newcomer.

A ```` ```text ```` block whose previous fenced block is a ```` ```bash ```` block is that block's
output: each of its non-blank lines must appear in what the block printed (``…`` stands for any
text, such as a number that changes from run to run).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
AS_WRITTEN = [DOCS / "quickstart.md", DOCS / "zh" / "quickstart.md", *sorted((DOCS / "tutorials").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)
MARK = "@@docs-block {}@@"
SEED_PACKAGES = {"pip", "setuptools", "wheel"}  # what `python -m venv` puts into .venv
BLOCKER = '''import importlib.machinery, os, re, sys
_modules = set(os.environ.get("SEGDIL_DOCS_HIDDEN_MODULES", "").split(","))
_dists = set(os.environ.get("SEGDIL_DOCS_HIDDEN_DISTS", "").split(","))
_path = importlib.machinery.PathFinder
class _SetupOnlyPathFinder:
    """The path finder, blind to what the README's set-up does not install: as on a newcomer's machine."""
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if path is None and name in _modules else _path.find_spec(name, path, target)
    @classmethod
    def find_distributions(cls, *args, **kwargs):
        return (d for d in _path.find_distributions(*args, **kwargs) if re.sub(r"[-_.]+", "-", d.metadata["Name"] or "").lower() not in _dists)
    @classmethod
    def invalidate_caches(cls):
        _path.invalidate_caches()
sys.meta_path[:] = [_SetupOnlyPathFinder if f is _path else f for f in sys.meta_path]
'''


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def setup_extras() -> list[str]:
    """The extras the README's set-up installs: `make demo` → `install` → `pip install -e ".[...]"`."""
    makefile = (ROOT / "Makefile").read_text()
    assert "make demo" in (ROOT / "README.md").read_text(), "the README's set-up command is `make demo`"
    assert "install" in re.search(r"^demo:(.*)$", makefile, re.M).group(1).split(), "make demo runs the install target"
    recipe = re.search(r"^\$\(VENV\)/\.installed:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    extras = re.search(r'install\b.*-e\s+"?\.(?:\[([^\]]*)\])?', recipe).group(1) or ""
    return [e.strip() for e in extras.split(",") if e.strip()]


def with_extra(line: str, extra: str) -> str:
    spec, _, marker = line.partition(";")
    return f"{spec}; ({marker}) and extra == '{extra}'" if marker.strip() else f"{spec}; extra == '{extra}'"


def requires(name: str) -> list[str] | None:
    """A distribution's requirement lines: segdil's from this checkout's pyproject.toml (the
    installed metadata may predate it), the others' from their installed metadata (None: not here)."""
    if canonical(name) == "segdil":
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        optional = project.get("optional-dependencies", {})
        return [*project["dependencies"], *(with_extra(r, e) for e, rs in optional.items() for r in rs)]
    try:
        return metadata.distribution(name).requires or []
    except metadata.PackageNotFoundError:
        return None


def installed_by_setup() -> set[str]:
    """Canonical names of the installed distributions that `segdil[extras]` pulls in, recursively."""
    found, seen, todo = set(SEED_PACKAGES), set(), [("segdil", frozenset(setup_extras()))]
    while todo:
        name, extras = todo.pop()
        if (canonical(name), extras) in seen:
            continue
        seen.add((canonical(name), extras))
        lines = requires(name)
        if lines is None:
            continue
        found.add(canonical(name))
        for line in lines:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in {"", *extras}):
                todo.append((req.name, frozenset(req.extras)))
    return found


def hidden() -> tuple[set[str], set[str]]:
    """The top-level modules and the distributions installed here that the set-up does not install."""
    allowed = installed_by_setup()
    modules = {
        top
        for top, dists in metadata.packages_distributions().items()
        if top not in sys.stdlib_module_names and not any(canonical(d) in allowed for d in dists)
    }
    return modules, {canonical(d.metadata["Name"]) for d in metadata.distributions()} - allowed


def terminal(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A fresh clone's folder and a new terminal's environment: `.venv` there, but not on PATH."""
    work, blocker = tmp_path / "clone", tmp_path / "setup-only"
    work.mkdir()
    blocker.mkdir()
    for name in ("configs", "tools", "lab", "docs"):
        (work / name).symlink_to(ROOT / name)
    venv = Path(sys.prefix)
    if sys.prefix != sys.base_prefix and (venv / "bin" / "activate").exists():
        (work / ".venv").symlink_to(venv)
    else:  # tests run outside a venv: an activate script that puts this interpreter on PATH
        (work / ".venv" / "bin").mkdir(parents=True)
        (work / ".venv" / "bin" / "activate").write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\n')
    (blocker / "sitecustomize.py").write_text(BLOCKER)
    keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "LC_ALL", "TMPDIR", "USER")}
    # OMP_NUM_THREADS and MPLBACKEND: CI's shared cores and no display; the pages need neither
    modules, dists = hidden()
    hide = {"SEGDIL_DOCS_HIDDEN_MODULES": ",".join(sorted(modules)), "SEGDIL_DOCS_HIDDEN_DISTS": ",".join(sorted(dists))}
    return work, {**keep, **hide, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(blocker), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def page_script(page: Path) -> tuple[str, list[tuple[str, str]], dict[int, str]]:
    """One bash script of the page's runnable blocks, in order, a marker before each; the blocks; and
    the expected output of a block (by index) where the page shows it."""
    blocks, expected, previous = [], {}, None
    for lang, body in FENCE.findall(page.read_text()):
        if lang in ("bash", "python"):
            blocks.append((lang, body))
        elif lang == "text" and previous == "bash":
            expected[len(blocks) - 1] = body
        previous = lang
    parts = ["set -euo pipefail"]
    for i, (lang, body) in enumerate(blocks):
        parts.append(f"echo '{MARK.format(i)}'")
        parts.append(body if lang == "bash" else f"python - <<'SEGDIL_DOCS_PY'\n{body}SEGDIL_DOCS_PY")
    return "\n".join(parts) + "\n", blocks, expected


def shown_lines_missing(shown: str, printed: str) -> list[str]:
    lines = [line.strip() for line in printed.splitlines()]
    missing = []
    for want in filter(None, (line.strip() for line in shown.splitlines())):
        pattern = re.compile(".*".join(map(re.escape, want.split("…"))))
        if not any(pattern.search(line) for line in lines):
            missing.append(want)
    return missing


@pytest.mark.slow
def test_hidden_packages_cannot_be_imported(tmp_path):
    # the emulation is real: a package of the dev extra only (pytest) is gone, one of the set-up (yaml) is not
    work, env = terminal(tmp_path)
    code = (
        "import importlib.metadata, importlib.util, yaml\n"
        "print(importlib.util.find_spec('pytest'), importlib.metadata.version('pyyaml'))\n"
        "try:\n    importlib.metadata.version('pytest')\nexcept importlib.metadata.PackageNotFoundError:\n    print('no pytest metadata')\n"
        "import pytest"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.splitlines() == [f"None {metadata.version('pyyaml')}", "no pytest metadata"], result.stderr[-2000:]
    assert "ModuleNotFoundError: No module named 'pytest'" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("page", AS_WRITTEN, ids=lambda p: str(p.relative_to(DOCS)))
def test_the_page_runs_as_written_after_the_readme_setup(page, tmp_path):
    work, env = terminal(tmp_path)
    script, blocks, expected = page_script(page)
    assert blocks, f"{page.name} has no runnable block"
    result = subprocess.run([shutil.which("bash") or "/bin/bash", "-c", script], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=400)
    pieces = re.split(r"^@@docs-block (\d+)@@$", result.stdout, flags=re.M)
    printed = {int(pieces[k]): pieces[k + 1] for k in range(1, len(pieces) - 1, 2)}
    last = max(printed, default=0)
    for i in range(last + 1):  # the first problem in the page's order
        output = printed.get(i, result.stdout)
        if i == last:
            assert result.returncode == 0, f"{page.name} block {i + 1} failed:\n{blocks[i][1]}\n--- output ---\n{output[-4000:]}"
        missing = shown_lines_missing(expected.get(i, ""), output)
        assert not missing, f"{page.name} block {i + 1} did not print what the page shows: {missing}\n--- output ---\n{output[-4000:]}"
    assert last == len(blocks) - 1, f"{page.name}: the script stopped after block {last + 1} of {len(blocks)}"
