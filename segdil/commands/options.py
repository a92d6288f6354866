"""Options shared by the commands that take a config."""

from __future__ import annotations

import click

from segdil.config import Config, dump_config, load_config
from segdil.device import PRECISIONS, check_precision


def config_options(func):
    """``--set key=value`` (repeatable) and ``--print-config``."""
    func = click.option("--print-config", is_flag=True, help="Print the resolved config and exit.")(func)
    func = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value, e.g. --set train.max_steps=100 (repeatable; YAML values).")(func)
    return func


def precision_option(help: str):
    """``--precision auto|bf16|fp32`` (default auto), one option for predict, eval and bench: the
    values of ``segdil.device.PRECISIONS``, a wrong one refused by ``check_precision`` in one line."""
    return click.option(
        "--precision", default="auto", show_default=True, metavar="|".join(PRECISIONS), help=help,
        callback=lambda ctx, param, value: check_precision(value, "--precision"),
    )


def resolve_config(path: str | None, overrides: tuple[str, ...], print_config: bool) -> Config:
    cfg = load_config(path, overrides)
    if print_config:
        click.echo(dump_config(cfg), nl=False)
        raise SystemExit(0)
    return cfg
