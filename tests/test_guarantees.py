"""docs/guarantees.md, checked: resume rules, the work-dir lock, failed writes, and interrupted writes
(every file is afterwards either its old complete version or its new complete one)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from bad_input_kit import CONFIG, ROOT, TINY, assert_one_line_error, dataset, invoke, snapshot, train_args

import segdil.atomic
from segdil.checkpoint import load_checkpoint
from segdil.train.lock import work_dir_lock


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """A finished 2-step run (last.pt, best.pt, metrics.jsonl, config.yaml, final_metrics.json)."""
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("base") / "run"
    result = invoke(train_args(run))
    assert result.exit_code == 0, result.output
    return run


def copy_run(base_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(base_run, run)
    return run


# --------------------------------------------------------------------------- resume rules (item 3)


@pytest.mark.parametrize("change, key", [("model.widths=[16]", "model.widths"), ("data.root=elsewhere", "data.root"), ("train.lr=0.5", "train.lr"), ("model.name=fcn", "model.name")])
def test_resume_refuses_model_and_data_changes_before_writing(base_run, tmp_path, change, key):
    run = copy_run(base_run, tmp_path)
    before = snapshot(tmp_path)
    result = invoke([*train_args(run, change), "--resume"])
    line = assert_one_line_error(result, 2, f"--resume {run}", key, "train.max_steps")
    assert "->" in line
    assert snapshot(tmp_path) == before


def test_resume_accepts_the_keys_that_may_change(base_run, tmp_path):
    run = copy_run(base_run, tmp_path)
    result = invoke([*train_args(run, "train.max_steps=3", "train.val_every=5", "train.ckpt_every=2", "data.num_workers=0", "train.device=cpu"), "--resume"])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(run / "last.pt")["step"] == 3
    assert "max_steps: 3" in (run / "config.yaml").read_text()


# --------------------------------------------------------------------------- the work-dir lock (item 4)


def test_second_run_in_a_locked_work_dir_is_refused_with_the_holders_pid(base_run, tmp_path):
    run = copy_run(base_run, tmp_path)
    with work_dir_lock(run):
        before = snapshot(tmp_path)
        result = invoke([*train_args(run, "train.max_steps=3"), "--resume"])
        assert_one_line_error(result, 2, f"PID {os.getpid()}", str(run / ".lock"))
        assert snapshot(tmp_path) == before


def test_second_run_in_another_process_is_refused(base_run, tmp_path):
    run = copy_run(base_run, tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from segdil.train.lock import work_dir_lock\n"
         "with work_dir_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)", str(run)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        result = invoke([*train_args(run, "train.max_steps=3"), "--resume"])
        assert_one_line_error(result, 2, f"PID {holder.pid}")
    finally:
        holder.kill()
        holder.wait()
    # the holder is dead: its lock file is stale and the next run takes it over
    assert (run / ".lock").read_text().strip() == str(holder.pid)
    result = invoke([*train_args(run, "train.max_steps=3"), "--resume"])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(run / "last.pt")["step"] == 3


# --------------------------------------------------------------------------- failed writes (item 10)


def test_disk_full_stops_with_one_line_and_keeps_the_checkpoint(base_run, tmp_path):
    """``ulimit -f`` below a checkpoint's size: the write of last.pt fails (EFBIG), as on a full disk."""
    run = copy_run(base_run, tmp_path)
    old = (run / "last.pt").read_bytes()
    limit = len(old) // 2

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    cmd = [sys.executable, "-m", "segdil", *map(str, train_args(run, "train.max_steps=3")), "--resume"]
    proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=small_files, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "cannot write" in errors[0] and "File too large" in errors[0] and str(run) in errors[0], proc.stderr[-2000:]
    assert (run / "last.pt").read_bytes() == old
    assert not [p for p in run.iterdir() if p.name.endswith(segdil.atomic.TEMP_SUFFIX)]


def test_read_only_work_dir_mid_run_stops_with_one_line(base_run, tmp_path, monkeypatch):
    """The work dir turns read-only after a step (simulated: tests may run as root, who can write anyway)."""
    import segdil.atomic as atomic
    from segdil.errors import SegdilError

    run = copy_run(base_run, tmp_path)
    old = (run / "last.pt").read_bytes()
    real_mkstemp = atomic.tempfile.mkstemp

    def read_only(*args, dir=None, prefix="", **kwargs):
        if Path(dir) == run and prefix.startswith(".last.pt."):  # config.yaml and step 3 went through
            raise PermissionError(13, "Permission denied", str(dir))
        return real_mkstemp(*args, dir=dir, prefix=prefix, **kwargs)

    monkeypatch.setattr(atomic.tempfile, "mkstemp", read_only)
    from segdil.config import load_config
    from segdil.train.main import train

    with pytest.raises(SegdilError) as error:
        train(load_config(CONFIG, [*TINY, "train.max_steps=3"]), work_dir=str(run), resume=True, quiet=True)
    assert error.value.message.startswith(f"{run}: cannot write (Permission denied)")
    assert (run / "last.pt").read_bytes() == old
    assert "max_steps: 3" in (run / "config.yaml").read_text()


# --------------------------------------------------------------------------- interrupted writes


class Crash(BaseException):
    """Stands for the process dying in the middle of a write."""


def crash_writes_of(monkeypatch, name: str, where: str) -> None:
    """Make the next atomic write of a file called ``name`` die at ``where``: after half the bytes
    are written ("write"), at fsync ("fsync") or just before the rename ("rename")."""
    real_replace, real_fsync, real_mkstemp = os.replace, os.fsync, segdil.atomic.tempfile.mkstemp
    temps: set[str] = set()

    def mkstemp(*args, **kwargs):
        fd, tmp = real_mkstemp(*args, **kwargs)
        if Path(tmp).name.startswith(f".{name}."):
            temps.add(tmp)
            if where == "write":
                os.write(fd, b"half a file")
                raise Crash(tmp)
        return fd, tmp

    def fsync(fd):
        if where == "fsync" and any(os.path.exists(t) and os.path.samefile(f"/proc/self/fd/{fd}", t) for t in temps):
            raise Crash(name)
        return real_fsync(fd)

    def replace(src, dst):
        if where == "rename" and str(src) in temps:
            raise Crash(name)
        return real_replace(src, dst)

    monkeypatch.setattr(segdil.atomic.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(segdil.atomic.os, "fsync", fsync)
    monkeypatch.setattr(segdil.atomic.os, "replace", replace)


def assert_old_or_new(path: Path, old: bytes | None, check) -> None:
    """``path`` is its old bytes, or a complete new file (``check`` reads it), never anything else."""
    if not path.exists():
        assert old is None, f"{path} vanished"
        return
    if path.read_bytes() != old:
        check(path)


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(segdil.atomic.TEMP_SUFFIX)]


def read_json(path: Path) -> None:
    json.loads(path.read_text())


def jsonl_complete_but_last(path: Path) -> None:
    lines = path.read_text().splitlines()
    for line in lines[:-1]:
        json.loads(line)


@pytest.mark.parametrize("where", ["write", "fsync", "rename"])
@pytest.mark.parametrize("name", ["last.pt", "best.pt", "final_metrics.json"])
def test_training_interrupted_during_a_write(base_run, tmp_path, monkeypatch, name, where):
    from segdil.checkpoint import save_checkpoint
    from segdil.config import load_config
    from segdil.train.main import train

    run = copy_run(base_run, tmp_path)
    ckpt = load_checkpoint(run / "last.pt")
    save_checkpoint({**ckpt, "best": None}, run / "last.pt")  # so that step 3 writes best.pt
    old = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    crash_writes_of(monkeypatch, name, where)
    torch.set_num_threads(1)

    cfg = load_config(CONFIG, [*TINY, "train.max_steps=4", "train.val_every=1"])
    with pytest.raises(Crash):
        train(cfg, work_dir=str(run), resume=True, quiet=False)
    for file in ("last.pt", "best.pt"):
        assert_old_or_new(run / file, old[file], load_checkpoint)
    assert_old_or_new(run / "final_metrics.json", old["final_metrics.json"], read_json)
    assert_old_or_new(run / "config.yaml", old["config.yaml"], lambda p: load_config(p))
    jsonl_complete_but_last(run / "metrics.jsonl")  # append-only: a crash may cut only its last line
    assert load_checkpoint(run / "last.pt")["step"] in (2, 3, 4)
    # a killed writer leaves its temporary (the "write" case); the next run in the work dir removes it
    assert bool(temporaries(run)) == (where == "write")
    monkeypatch.undo()
    result = invoke([*train_args(run, "train.max_steps=5"), "--resume"])
    assert result.exit_code == 0, result.output
    assert not temporaries(run) and load_checkpoint(run / "last.pt")["step"] == 5


@pytest.mark.parametrize("where", ["write", "fsync", "rename"])
def test_eval_json_interrupted(tmp_path, monkeypatch, where):
    from helpers import make_checkpoint

    ckpt = make_checkpoint(tmp_path / "m.pt")
    root = dataset(tmp_path / "data")
    out = tmp_path / "metrics.json"
    out.write_text('{"old": true}\n')
    crash_writes_of(monkeypatch, "metrics.json", where)
    from segdil.atomic import write_json
    from segdil.evaluation import evaluate

    result, names = evaluate(None, None, None, ckpt, root, "val", 1, "cpu", 255, None)
    with pytest.raises(Crash):
        write_json(out, {**result, "class_names": names})
    assert out.read_text() == '{"old": true}\n'


@pytest.mark.parametrize("where", ["write", "rename"])
def test_export_interrupted(tmp_path, monkeypatch, where):
    pytest.importorskip("onnxruntime")
    from helpers import make_checkpoint

    from segdil.inference.export import export_checkpoint

    ckpt = make_checkpoint(tmp_path / "m.pt")
    out = tmp_path / "m.onnx"
    out.write_bytes(b"old onnx")
    crash_writes_of(monkeypatch, "m.onnx", where)
    with pytest.raises(Crash):
        export_checkpoint(ckpt, out, height=32, width=32, overwrite=True)
    assert out.read_bytes() == b"old onnx"
    monkeypatch.undo()
    export_checkpoint(ckpt, out, height=32, width=32, overwrite=True)
    import onnx

    onnx.checker.check_model(str(out))


@pytest.mark.parametrize("where", ["write", "fsync", "rename"])
@pytest.mark.parametrize("name", ["photo.png", "photo_probs.npy"])
def test_predict_output_interrupted(tmp_path, monkeypatch, name, where):
    """A crash while predict writes a mask or probabilities leaves the old file whole; a rerun
    with --overwrite (or --skip-existing) finishes the job."""
    import numpy as np
    from helpers import make_checkpoint

    from segdil.data.io import load_mask, save_image
    from segdil.inference.predict_files import predict_files

    ckpt = make_checkpoint(tmp_path / "m.pt")
    source = tmp_path / "in" / "photo.jpg"
    save_image(source, np.random.default_rng(0).integers(0, 255, (40, 52, 3), dtype=np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    old = {"photo.png": b"old mask", "photo_probs.npy": b"old probabilities"}
    for file, content in old.items():
        (out / file).write_bytes(content)
    crash_writes_of(monkeypatch, name, where)
    with pytest.raises(Crash):
        predict_files(ckpt, [source], out, probs=True, device="cpu", overwrite=True, progress=False)
    assert (out / name).read_bytes() == old[name]
    monkeypatch.undo()
    predict_files(ckpt, [source], out, probs=True, device="cpu", overwrite=True, progress=False)
    assert load_mask(out / "photo.png").shape == (40, 52) and np.load(out / "photo_probs.npy").shape[1:] == (40, 52)
