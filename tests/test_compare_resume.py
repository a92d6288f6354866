"""Ctrl-C in ``segdil compare`` says what finished; the same command continues (end to end)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from helpers import TINY_SYNTH

from segdil.compare.presets import shipped_config

STEPS = 400  # seed 0 finishes; seed 1 is stopped long before its last step


def _command(out):
    args = [sys.executable, "-m", "segdil", "compare", str(shipped_config("hdc_synth")), "--seeds", "2", "--steps", str(STEPS), "--out", str(out), "--device", "cpu"]
    for item in [*TINY_SYNTH, "data.synth.max_object=16", "data.synth.n_train=16", "data.synth.n_val=4", "train.batch_size=2", "train.ckpt_every=5", "train.val_every=100000", "model.widths=[4]", "model.blocks=1"]:
        args += ["--set", item]
    return args


def _wait_for(path, proc, timeout_s=300.0):
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, f"compare exited ({proc.returncode}) before {path} appeared"
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout_s:g} s"
        time.sleep(0.05)


@pytest.mark.slow
def test_interrupted_compare_says_what_finished_and_the_same_command_continues(tmp_path):
    out = tmp_path / "cmp"
    seed0, seed1 = out / "runs" / "hdc_synth" / "seed0", out / "runs" / "hdc_synth" / "seed1"
    # Ctrl-C reaches the whole process group of the terminal: the comparison and its running child
    proc = subprocess.Popen(_command(out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        _wait_for(seed0 / "run.json", proc)
        _wait_for(seed1 / "last.pt", proc)
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, output
    message = output.strip().splitlines()[-1]
    assert message.startswith("Error: interrupted: 1 of 2 runs finished (hdc_synth seed 0); "), output
    assert f"hdc_synth seed 1 saved {seed1 / 'last.pt'} and will continue from it" in message
    assert message.endswith("Run the same command again to continue: finished runs are reused.")
    assert "Traceback" not in output
    stopped = int(re.search(r"saved \S+ at step (\d+)", (out / "runs" / "hdc_synth" / "seed1.log").read_text()).group(1))
    assert 0 < stopped < STEPS
    assert not (seed1 / "run.json").exists() and not (out / "report.md").exists()
    finished = (seed0 / "run.json").read_text()

    again = subprocess.run(_command(out), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"reused {seed0}" in again.stdout
    assert f"hdc_synth seed 1: continuing the interrupted run from {seed1 / 'last.pt'}" in again.stdout
    assert (seed0 / "run.json").read_text() == finished  # not retrained
    log = (out / "runs" / "hdc_synth" / "seed1.log").read_text()
    assert f"resumed from {seed1 / 'last.pt'} at step {stopped}" in log
    assert json.loads((seed1 / "run.json").read_text())["step"] == STEPS
    assert (out / "report.md").is_file()


def test_the_expected_time_is_printed_before_the_first_run(tmp_path):
    from click.testing import CliRunner

    from segdil.commands.compare import command

    out = tmp_path / "cmp"
    args = [str(shipped_config("hdc_synth")), "--seeds", "1", "--steps", "2", "--out", str(out), "--device", "cpu"]
    for item in [*TINY_SYNTH, "data.synth.max_object=16", "data.synth.n_train=4", "train.batch_size=2", "model.widths=[4]", "model.blocks=1"]:
        args += ["--set", item]
    result = CliRunner().invoke(command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    expected = next(i for i, line in enumerate(lines) if line.startswith("expected time: about "))
    first_run = next(i for i, line in enumerate(lines) if "hdc_synth seed 0: training" in line)
    assert expected < first_run
    assert re.search(r"for 1 run\(s\) \(2 steps each; a training step measured now: hdc_synth \d+ ms\)", lines[expected]), lines[expected]
    again = CliRunner().invoke(command, args, catch_exceptions=False)
    assert "expected time: every run is finished already" in again.output
