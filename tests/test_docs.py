"""The docs cannot rot: every ```bash and ```python block runs, in order, in a fresh folder (the quick
start and the tutorials as a newcomer runs them, in tests/test_docs_as_written.py)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_docs_as_written import AS_WRITTEN

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)


def runnable_blocks(page: Path) -> list[tuple[str, str]]:
    return [(lang, body) for lang, body in FENCE.findall(page.read_text()) if lang in ("bash", "python")]


EXECUTED = [
    pytest.param(p, marks=pytest.mark.xdist_group("torchrun")) if "torchrun" in p.read_text() else p
    for p in PAGES
    if runnable_blocks(p) and p not in AS_WRITTEN
]


@pytest.mark.slow
@pytest.mark.parametrize("page", EXECUTED, ids=lambda p: str(p.relative_to(DOCS)))
def test_every_block_of_the_page_runs(page, tmp_path):
    for name in ("configs", "tools", "lab", "docs"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    for i, (lang, body) in enumerate(runnable_blocks(page)):
        cmd = ["bash", "-euo", "pipefail", "-c", body] if lang == "bash" else [sys.executable, "-c", body]
        result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{page.name} block {i + 1} ({lang}) failed:\n{body}\n--- output ---\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_links_and_images_exist(page):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if "://" in target:
            continue
        assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to missing {target}"


@pytest.mark.slow
def test_cli_reference_equals_the_real_help():
    # a fresh process: click caches each command's help option, and a command invoked on its own
    # by another test in this process would render "--help" without the group's "-h"
    code = "import sys; sys.path.insert(0, 'tools'); from gen_cli_docs import render; sys.stdout.write(render())"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (DOCS / "cli.md").read_text() == result.stdout, "docs/cli.md is stale: run python tools/gen_cli_docs.py"
