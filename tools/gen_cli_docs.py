#!/usr/bin/env python
"""Write docs/cli.md from the real ``--help`` of every command (tests/test_docs.py checks it is current)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.testing import CliRunner

from segdil.cli import cli

HEADER = """# Command reference

Every command's `--help`, exactly as printed (`python tools/gen_cli_docs.py` regenerates this page;
the test suite fails when it differs from the real output).
"""


def help_text(args: list[str]) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], terminal_width=100)
    if result.exit_code != 0:
        raise SystemExit(f"segdil {' '.join(args)} --help failed: {result.output}")
    return result.output.rstrip()


def command_paths() -> list[list[str]]:
    ctx = click.Context(cli)
    paths = [[]]
    for name in cli.list_commands(ctx):
        paths.append([name])
        command = cli.get_command(ctx, name)
        if isinstance(command, click.Group):
            paths += [[name, sub] for sub in command.list_commands(ctx)]
    return paths


def render() -> str:
    parts = [HEADER]
    for path in command_paths():
        title = " ".join(["segdil", *path])
        parts.append(f"## `{title}`")
        parts.append(f"```text\n{help_text(path)}\n```")
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
    out.write_text(render())
    print(f"wrote {out}", file=sys.stderr)
