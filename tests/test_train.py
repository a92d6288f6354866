import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import TINY_SYNTH

from segdil.checkpoint import load_checkpoint, save_checkpoint
from segdil.config import load_config
from segdil.errors import SegdilError
from segdil.train.main import train

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted(p for p in (ROOT / "configs").glob("*_synth.yaml") if not p.name.startswith("_"))

# tiny images, few steps: the shipped configs' models and schedules, a toy-sized benchmark
TINY = TINY_SYNTH + [
    "data.synth.n_train=8",
    "data.synth.max_object=12",
    "train.batch_size=4",
    "train.warmup_steps=1",
    "train.log_every=1",
    "train.val_every=1000",
    "train.ckpt_every=1000",
]


def losses(work_dir: Path) -> list[float]:
    records = [json.loads(line) for line in (work_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_loss_decreases_for_every_shipped_config(config, tmp_path):
    torch.set_num_threads(1)
    cfg = load_config(config, TINY + ["train.max_steps=10", "train.lr=0.003", "train.optimizer=adamw", "model.widths=[8]" if "hdc" in config.stem else "train.seed=0"])
    result = train(cfg, work_dir=str(tmp_path / "run"), quiet=False)
    values = losses(tmp_path / "run")
    assert len(values) == 10
    assert sum(values[-3:]) / 3 < sum(values[:3]) / 3, values
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["step"] == 10 and ckpt["config"]["name"] == config.stem
    assert ckpt["class_names"][0] == "background" and ckpt["model_args"]["num_classes"] == len(ckpt["class_names"])
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "config.yaml").is_file()
    assert "small_object_iou" in result and "mIoU" in result


def _train_cmd(work_dir: Path, *extra: str) -> list[str]:
    overrides = TINY + ["train.max_steps=40", "train.ckpt_every=3", "model.widths=[8]", "model.blocks=1", *extra]
    cmd = [sys.executable, str(ROOT / "tools" / "train.py"), str(ROOT / "configs" / "hdc_synth.yaml"), "--work-dir", str(work_dir)]
    for item in overrides:
        cmd += ["--set", item]
    return cmd


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_identical(tmp_path):
    reference = tmp_path / "reference"
    subprocess.run(_train_cmd(reference), check=True, env=_env(), capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(killed), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill somewhere after the second checkpoint, mid-run
        jsonl = killed / "metrics.jsonl"
        if jsonl.is_file() and len(jsonl.read_text().splitlines()) >= 8:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed; make it longer"
    killed_at = load_checkpoint(killed / "last.pt")["step"]
    assert 0 < killed_at < 40

    subprocess.run(_train_cmd(killed) + ["--resume"], check=True, env=_env(), capture_output=True)
    a = load_checkpoint(reference / "last.pt")
    b = load_checkpoint(killed / "last.pt")
    assert a["step"] == b["step"] == 40
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"])


@pytest.mark.slow
def test_sigterm_saves_last_and_exits_cleanly(tmp_path):
    work = tmp_path / "run"
    proc = subprocess.Popen(_train_cmd(work, "train.max_steps=100000", "train.ckpt_every=100000"), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not ((work / "metrics.jsonl").is_file() and len((work / "metrics.jsonl").read_text().splitlines()) >= 3):
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "Traceback" not in out
    assert "SIGTERM received: saved" in out
    assert load_checkpoint(work / "last.pt")["step"] >= 3


def test_nan_loss_stops_with_the_step_and_keeps_last_good(tmp_path):
    cfg = load_config(ROOT / "configs" / "hdc_synth.yaml", TINY + ["train.max_steps=30", "train.ckpt_every=1", "model.widths=[8]", "model.blocks=1", "train.lr=1.0e+30", "train.optimizer=sgd", "train.grad_clip=null", "train.warmup_steps=0", "train.schedule=constant"])
    with pytest.raises(SegdilError, match=r"step \d+: the loss is (nan|inf); stopped\. The last good checkpoint is .*last\.pt"):
        train(cfg, work_dir=str(tmp_path / "run"))
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("interrupted mid-write")


def test_interrupted_checkpoint_write_leaves_the_previous_one(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint({"model_args": {"name": "hdc"}, "model": {"w": torch.ones(3)}, "step": 1}, path)
    with pytest.raises(RuntimeError, match="interrupted"):
        save_checkpoint({"model_args": {"name": "hdc"}, "model": {"w": torch.zeros(1000)}, "step": 2, "bad": Unpicklable()}, path)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_existing_run_is_never_overwritten(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_bytes(b"x")
    cfg = load_config(ROOT / "configs" / "hdc_synth.yaml", TINY + ["train.max_steps=1"])
    with pytest.raises(SegdilError, match="already holds a run; pass --resume"):
        train(cfg, work_dir=str(tmp_path / "run"))


@pytest.mark.slow
@pytest.mark.xdist_group("torchrun")  # one torchrun at a time: concurrent rendezvous on one machine can collide
def test_ddp_two_gloo_processes_match_one_process(tmp_path):
    common = ["train.max_steps=4", "data.scale_range=[1, 1]", "model.widths=[8]", "model.blocks=1", "model.norm=group", "train.lr=0.001"]
    single = tmp_path / "single"
    subprocess.run(_train_cmd(single, *common, "train.batch_size=4"), check=True, env=_env(), capture_output=True)
    ddp = tmp_path / "ddp"
    cmd = _train_cmd(ddp, *common, "train.batch_size=2")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = subprocess.run(torchrun + cmd[1:], env=_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    a = load_checkpoint(single / "last.pt")["model"]
    b = load_checkpoint(ddp / "last.pt")["model"]
    for key in a:
        assert torch.allclose(a[key], b[key], atol=2e-5, rtol=1e-4), key


def test_leaving_the_process_group_first_collects_garbage_that_may_hold_it(tmp_path):
    # DistributedDataParallel can sit in a reference cycle that keeps the group alive; such a
    # cycle must be freed while the group still exists, not at interpreter shutdown
    import gc

    import torch.distributed as dist

    from segdil.train.distributed import cleanup_distributed

    seen = []

    class Cycle:
        def __del__(self):
            seen.append(dist.is_initialized())

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    was_enabled = gc.isenabled()
    gc.disable()  # only an explicit collection may free the cycle
    try:
        cycle = Cycle()
        cycle.itself = cycle
        del cycle
        cleanup_distributed()
        assert seen == [True] and not dist.is_initialized()
    finally:
        if was_enabled:
            gc.enable()
        if dist.is_initialized():
            dist.destroy_process_group()


def test_tensorboard_gets_scalars_and_prediction_overlays(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = load_config(ROOT / "configs" / "hdc_synth.yaml", TINY + ["train.max_steps=2", "model.widths=[8]", "model.blocks=1"])
    train(cfg, work_dir=str(tmp_path / "run"))
    events = EventAccumulator(str(tmp_path / "run" / "tb"), size_guidance={"images": 0})
    events.Reload()
    assert {"train/loss", "val/mIoU", "val/small_object_iou"} <= set(events.Tags()["scalars"])
    (image,) = events.Images("val/image_gt_prediction")
    assert image.step == 2 and image.height == 32 and image.width == 2 * 3 * 32  # 2 val images, each image | gt | pred


def test_start_is_one_summary_line_and_the_config_goes_to_the_work_dir(tmp_path, capsys):
    cfg = load_config(ROOT / "configs" / "hdc_synth.yaml", TINY + ["train.max_steps=1", "model.widths=[8]", "model.blocks=1"])
    train(cfg, work_dir=str(tmp_path / "run"))
    err = capsys.readouterr().err
    summary = [line for line in err.splitlines() if line.startswith("training ")]
    assert len(summary) == 1 and "hdc (" in summary[0] and "parameters) on synthetic standard 32 px (8 train / 2 val images), 1 steps, batch 4, cpu" in summary[0]
    assert str(tmp_path / "run" / "config.yaml") in summary[0]
    assert "poly_power" not in err and "size_bins" not in err  # the resolved config is not printed ...
    assert "poly_power: 0.9" in (tmp_path / "run" / "config.yaml").read_text()  # ... it is saved


def test_a_short_schedule_is_said_once_and_not_changed():
    from segdil.train.optim import lr_factor, schedule_notes

    short = load_config(None, ["train.max_steps=20", "train.warmup_steps=50", "train.val_every=200"]).train
    notes = schedule_notes(short)
    assert len(notes) == 2 and "never leaves warm-up" in notes[0] and "train.warmup_steps=2" in notes[0] and "validation runs once" in notes[1]
    assert lr_factor(19, short) == 20 / 50  # warned, not rescaled: resumes and seeds give the numbers they gave before
    assert schedule_notes(load_config(None, ["train.max_steps=100", "train.warmup_steps=10", "train.val_every=50"]).train) == []
    for demo in sorted((ROOT / "configs" / "demo").glob("[!_]*.yaml")):  # the demo runs by its clock: nothing to say
        assert schedule_notes(load_config(demo).train) == [], demo
