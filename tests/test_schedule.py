"""The learning-rate schedule over the step limit or, with train.budget_s, over the time budget."""

import json
from pathlib import Path

import pytest
import torch
from helpers import TINY_SYNTH

from segdil.checkpoint import load_checkpoint
from segdil.config import load_config
from segdil.config.schema import TrainConfig
from segdil.train.main import train
from segdil.train.optim import lr_factor

ROOT = Path(__file__).resolve().parent.parent
TINY = TINY_SYNTH + ["data.synth.n_train=8", "data.synth.max_object=12", "train.batch_size=2", "train.warmup_steps=1", "train.log_every=1", "train.val_every=100000", "train.ckpt_every=100000", "model.widths=[4]", "model.blocks=1"]


@pytest.mark.parametrize("schedule", ["poly", "cosine"])
def test_step_schedule_warms_up_then_decays_to_zero_at_the_step_limit(schedule):
    cfg = TrainConfig(max_steps=100, warmup_steps=10, schedule=schedule)
    factors = [lr_factor(step, cfg) for step in range(101)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))
    assert factors[100] == pytest.approx(0.0)


def test_budget_schedule_follows_whichever_limit_is_nearer():
    cfg = TrainConfig(max_steps=10**9, warmup_steps=0, schedule="poly", poly_power=1.0, budget_s=100.0)
    assert lr_factor(10, cfg, elapsed_s=25.0) == pytest.approx(0.75)
    assert lr_factor(10, cfg, elapsed_s=100.0) == 0.0
    steps_first = TrainConfig(max_steps=40, warmup_steps=0, schedule="poly", poly_power=1.0, budget_s=100.0)
    assert lr_factor(30, steps_first, elapsed_s=25.0) == pytest.approx(0.25)
    assert lr_factor(10, TrainConfig(max_steps=10**9, warmup_steps=0, schedule="constant", budget_s=100.0), elapsed_s=99.0) == 1.0


def logged_lrs(work_dir: Path) -> list[float]:
    records = [json.loads(line) for line in (work_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["lr"] for r in records if "lr" in r]


def test_a_run_stopped_by_its_clock_has_decayed_and_a_resume_keeps_the_clock(tmp_path):
    torch.set_num_threads(1)
    work = tmp_path / "run"
    cfg = load_config(ROOT / "configs" / "hdc_synth.yaml", TINY + ["train.max_steps=1000000", "train.budget_s=2", "train.lr=0.01"])
    train(cfg, work_dir=str(work))
    first = load_checkpoint(work / "last.pt")
    lrs = logged_lrs(work)
    assert 2.0 <= first["train_s"] < 30 and 1 < first["step"] < 1000000
    assert lrs[-1] < 0.5 * 0.01 and lrs[-1] < lrs[1]

    resumed = load_config(ROOT / "configs" / "hdc_synth.yaml", TINY + ["train.max_steps=1000000", "train.budget_s=3", "train.lr=0.01"])
    train(resumed, work_dir=str(work), resume=True)
    second = load_checkpoint(work / "last.pt")
    after = logged_lrs(work)[len(lrs):]
    assert second["train_s"] >= 3.0 and second["step"] > first["step"]
    assert max(after) < 0.5 * 0.01, "the resumed run restarted its schedule instead of continuing the clock"


@pytest.mark.slow
@pytest.mark.xdist_group("torchrun")  # one torchrun at a time: concurrent rendezvous on one machine can collide
def test_ddp_ranks_share_one_clock_and_stop_together(tmp_path):
    import os
    import subprocess
    import sys

    work = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(ROOT / "tools" / "train.py"), str(ROOT / "configs" / "hdc_synth.yaml"), "--work-dir", str(work)]
    for item in TINY + ["train.max_steps=1000000", "train.budget_s=3", "model.norm=group"]:
        cmd += ["--set", item]
    result = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ckpt = load_checkpoint(work / "last.pt")
    assert ckpt["train_s"] >= 3.0 and 1 < ckpt["step"] < 1000000
    assert logged_lrs(work)[-1] < 0.5 * ckpt["config"]["train"]["lr"]
