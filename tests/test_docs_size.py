"""The docs stay user pages and tools/ stays user tools: experiments and their logs live in lab/."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MAX_LINES = 300
GENERATED = {DOCS / "cli.md"}  # written by tools/gen_cli_docs.py from the real --help
PAGES = sorted(p for p in DOCS.rglob("*.md") if p not in GENERATED)
# what users run; an experiment script belongs in lab/ (with a line in lab/README.md)
USER_TOOLS = {"train.py", "compare.py", "bench.py", "gen_cli_docs.py", "make_fixture_datasets.py"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_every_page_is_short(page):
    lines = len(page.read_text().splitlines())
    assert lines <= MAX_LINES, f"{page.relative_to(ROOT)}: {lines} lines, more than {MAX_LINES}; move experiment logs to lab/README.md"


def test_tools_holds_only_the_user_tools():
    found = {p.name for p in (ROOT / "tools").iterdir() if p.name != "__pycache__"}
    assert found == USER_TOOLS, f"tools/ should hold exactly {sorted(USER_TOOLS)}: extra {sorted(found - USER_TOOLS)}, missing {sorted(USER_TOOLS - found)}"


def test_every_lab_script_is_in_the_lab_readme():
    readme = (ROOT / "lab" / "README.md").read_text()
    scripts = [p.name for p in (ROOT / "lab").iterdir() if p.suffix in (".py", ".sh")]
    assert scripts and all(f"lab/{name}" in readme for name in scripts), "every lab/ script needs a line in lab/README.md saying how to run it"
