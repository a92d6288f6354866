"""The generated path-argument table (tests/bad_input_cases/path_arguments.py, run by tests/test_bad_inputs.py)
covers every path argument of every command, and every one of them uses segdil's PathType."""

from __future__ import annotations

import click
import pytest
from bad_input_cases.path_arguments import COMMANDS

from segdil.cli import cli
from segdil.path_names import NAME_MAX, PathType, path_name_problem, shown_path


def _path_params() -> dict[tuple[str, str], click.Parameter]:
    ctx = click.Context(cli)
    found = {}

    def walk(command: click.Command, prefix: str) -> None:
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), f"{prefix} {name}".strip())
            return
        for param in command.params:
            name = param.opts[0].lstrip("-").replace("-", "_")  # --work-dir: work_dir; an argument: its name
            if isinstance(param.type, click.Path) or name in ("work_dir", "model"):
                found[(prefix, name)] = param

    walk(cli, "")
    return found


def test_the_table_covers_every_path_argument():
    assert {(a.command, a.param) for a in COMMANDS} == set(_path_params())


@pytest.mark.parametrize("key", sorted(_path_params()), ids=" ".join)
def test_path_arguments_use_the_checked_type(key):
    param = _path_params()[key]
    if key == ("bench", "model"):  # a model name or a config path: checked where it is read as a path
        return
    assert isinstance(param.type, PathType), key


def test_names_over_the_limit_and_loops_are_problems(tmp_path):
    assert path_name_problem(tmp_path / ("a" * NAME_MAX)) is None
    assert "256 bytes" in path_name_problem(tmp_path / ("a" * (NAME_MAX + 1)))
    assert "bytes" in path_name_problem(tmp_path / ("é" * 128))  # 256 bytes in UTF-8
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert "loop" in path_name_problem(tmp_path / "loop")
    (tmp_path / "f").write_text("x")
    assert "is a file, not a folder" in path_name_problem(tmp_path / "f" / "g" / "h.png")
    assert path_name_problem(tmp_path / "missing" / "x.png") is None


def test_shown_paths_are_bounded_and_keep_the_name():
    long = "/data/" + "d" * 5000 + "/image.png"
    text = shown_path(long)
    assert len(text) <= 165 and text.startswith("/data/") and text.endswith("/image.png")
    assert shown_path("/a/b.png") == "/a/b.png"
