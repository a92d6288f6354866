"""Shared test helpers: tiny checkpoints written the way training writes them, and the tiny
synthetic data every training test starts from (``tests/conftest.py`` exposes both as fixtures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from segdil.checkpoint import save_checkpoint
from segdil.config import Config
from segdil.models import create_model, model_class

# tiny images and no worker processes: the synthetic benchmark at toy size, for training tests
TINY_SYNTH = [
    "data.synth.size=32",
    "data.synth.n_val=2",
    "data.crop_size=32",
    "data.num_workers=0",
]


def make_checkpoint(path: Path, name: str = "hdc", seed: int = 0, **extra: Any) -> Path:
    """A 3-class checkpoint of a tiny model with randomised BatchNorm statistics (so folding matters)."""
    args = {"name": name, "num_classes": 3, **model_class(name).tiny_args()}
    torch.manual_seed(seed)
    model = create_model(**args)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    save_checkpoint({"model_args": args, "model": model.state_dict(), "config": Config().to_dict(), "class_names": ["bg", "a", "b"], **extra}, path)
    return path


def refuse_network(monkeypatch) -> list:
    """Make every socket lookup or connection fail; returns the list of attempts (empty: none was tried)."""
    import socket

    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network use in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def run_two_ranks(target, init_dir: Path, timeout_s: float = 120) -> list:
    """Run ``target(rank, 2, init_file, queue)`` in two spawned processes (a gloo group); returns what they put on the queue."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=target, args=(rank, 2, str(Path(init_dir) / "init"), queue)) for rank in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=timeout_s)
        assert proc.exitcode == 0
    return [queue.get(timeout=5) for _ in procs]
