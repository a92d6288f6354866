"""Fixtures shared by the test modules (the helpers behind them live in ``tests/helpers.py``)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Callable

import pytest
from helpers import TINY_SYNTH, make_checkpoint

# A suite started in the background of a non-interactive shell inherits SIGINT ignored, and the
# commands the signal tests start would inherit it too and never see their Ctrl-C: a handled
# SIGINT here is reset to the default when they exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Callable[..., Path]:
    """``tiny_checkpoint(name="hdc", seed=0, **extra)``: the path of a fresh 3-class checkpoint of
    the family's ``tiny_args()`` model, with randomised BatchNorm statistics."""
    counter = iter(range(10**6))

    def make(name: str = "hdc", seed: int = 0, **extra: Any) -> Path:
        return make_checkpoint(tmp_path / f"{name}-{next(counter)}.pt", name, seed, **extra)

    return make


@pytest.fixture
def tiny_synth() -> list[str]:
    """``--set`` overrides for the toy-sized synthetic benchmark (a copy: tests may extend it)."""
    return list(TINY_SYNTH)
