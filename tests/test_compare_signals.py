"""SIGTERM (or the death) of ``segdil compare`` stops its training child: the child saves ``last.pt`` and ends, no orphan
trains on, the message says what finished, and the same command continues the run (issue #30)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TINY_SYNTH

from segdil.compare.presets import shipped_config
from segdil.output_paths import lock_holder

STEPS = 40  # far more than run before the signal arrives (it comes at step 2-4)


def _command(out: Path, steps: int = STEPS) -> list[str]:
    args = [sys.executable, "-m", "segdil", "compare", str(shipped_config("hdc_synth")), "--seeds", "1", "--steps", str(steps), "--out", str(out), "--device", "cpu"]
    for item in [*TINY_SYNTH, "data.synth.max_object=16", "data.synth.n_train=8", "data.synth.n_val=2", "train.batch_size=2", "train.ckpt_every=2", "train.val_every=100000", "model.widths=[4]", "model.blocks=1"]:
        args += ["--set", item]
    return args


def _child_pid(run: Path, proc: subprocess.Popen, timeout_s: float = 300.0) -> int:
    """The training child's PID (its lock file holds it), once it has saved a checkpoint."""
    deadline = time.monotonic() + timeout_s
    while not (run / "last.pt").exists() or lock_holder(run) is None:
        assert proc.poll() is None, f"compare exited ({proc.returncode}) before {run / 'last.pt'} appeared: {proc.stdout.read()}"
        assert time.monotonic() < deadline, f"{run / 'last.pt'} did not appear within {timeout_s:g} s"
        time.sleep(0.02)
    return int(lock_holder(run))


def _gone(pid: int, timeout_s: float = 120.0) -> bool:
    """Whether process ``pid`` ends (or is a zombie no one reaped) within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_sigterm_stops_the_child_says_what_finished_and_the_rerun_continues(tmp_path):
    out = tmp_path / "cmp"
    run = out / "runs" / "hdc_synth" / "seed0"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_command(out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, env=env)
    try:
        child = _child_pid(run, proc)
        proc.send_signal(signal.SIGTERM)  # to the comparison alone, as `kill PID` does
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGTERM, output
    assert _gone(child, 5), "the training child outlived the comparison"
    message = output.strip().splitlines()[-1]
    assert message.startswith("Error: stopped by SIGTERM: 0 of 1 runs finished (none); "), output
    assert f"hdc_synth seed 0 saved {run / 'last.pt'} and will continue from it" in message
    assert "Traceback" not in output and lock_holder(run) is None

    again = subprocess.run(_command(out), capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"hdc_synth seed 0: continuing the interrupted run from {run / 'last.pt'}" in again.stdout, f"first run:\n{output[-2000:]}\nrerun:\n{again.stdout[:3000]}"
    assert (out / "report.md").is_file()


@pytest.mark.slow
def test_a_killed_comparison_leaves_no_orphan_training(tmp_path):
    """kill -9 gives the comparison no chance to act: the kernel sends its child SIGTERM (PR_SET_PDEATHSIG)."""
    out = tmp_path / "cmp"
    run = out / "runs" / "hdc_synth" / "seed0"
    proc = subprocess.Popen(_command(out, steps=100000), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    child = None
    try:
        child = _child_pid(run, proc)
        proc.kill()
        proc.wait(timeout=60)
        assert _gone(child), "the training child trains on as an orphan"
    finally:
        if child is not None and not _gone(child, 0):
            os.kill(child, signal.SIGKILL)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    log = (out / "runs" / "hdc_synth" / "seed0.log").read_text()
    assert "saved" in log and "SIGTERM" in log, log[-2000:]
    assert lock_holder(run) is None
