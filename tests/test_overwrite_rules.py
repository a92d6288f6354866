"""What --overwrite may replace (issue #30): data synth replaces only its own output, compare writes only into
its own folder, a run folder held by a live process is never removed, and a failed write names its file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bad_input_kit import CONFIG, ROOT, TINY, assert_one_line_error, invoke, snapshot

from segdil.compare.execute import run_config, run_dir, run_models
from segdil.compare.plan import MARKER, check_out, plan_models
from segdil.config import dump_config
from segdil.data.synth_write import MANIFEST
from segdil.errors import SegdilError
from segdil.output_paths import folder_lock, lock_holder
from segdil.train.lock import work_dir_lock

SYNTH = ["--size", "16", "--n-train", "2", "--n-val", "1"]


def test_synth_overwrite_replaces_its_own_output_and_nothing_beside_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "d"
    assert invoke(["data", "synth", out, *SYNTH]).exit_code == 0
    manifest = json.loads((out / MANIFEST).read_text())
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert sorted(manifest["files"]) == written and "train/images/00000.png" in written
    # the user's own ".d.old" (the name the old code used for its temporary) and a neighbour stay untouched
    (tmp_path / ".d.old").mkdir()
    (tmp_path / ".d.old" / "keep.txt").write_text("mine\n")
    (tmp_path / "neighbour.txt").write_text("mine too\n")
    before = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("d")}
    result = invoke(["data", "synth", out, *SYNTH, "--seed", "7", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("d")} == before  # nothing else, no temporaries
    assert json.loads((out / "objects.json").read_text())["config"]["seed"] == 7


def test_synth_refusal_of_a_foreign_file_comes_with_and_without_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "d"
    assert invoke(["data", "synth", out, *SYNTH]).exit_code == 0
    (out / MANIFEST).write_text("{not json")  # an unreadable manifest vouches for nothing
    for extra in ([], ["--overwrite"]):
        assert_one_line_error(invoke(["data", "synth", out, *SYNTH, *extra]), 2, "did not write")


def _entries(tmp_path: Path):
    return plan_models([CONFIG], [*TINY, "train.max_steps=1"], device="cpu")


def test_compare_out_accepts_its_own_earlier_output_only(tmp_path):
    out = tmp_path / "cmp"
    (out / "figures").mkdir(parents=True)
    for name in ("report.md", "report.html", "results.json", "figures/size_iou.png", ".results.json.abc123.tmp"):
        (out / name).write_text("earlier\n")
    with pytest.raises(SegdilError, match="which this command did not write"):
        check_out(out)  # no marker: these may be anyone's files
    (out / MARKER).write_text('{"written_by": "segdil compare"}\n')
    check_out(out)  # compare's own: continued
    (out / "figures" / "notes.txt").write_text("mine\n")
    with pytest.raises(SegdilError, match="notes.txt"):
        check_out(out)


def test_compare_never_removes_a_run_folder_held_by_a_live_process(tmp_path):
    """A run left without a checkpoint is restarted, but not while a process (an orphaned child) holds its lock."""
    entries = _entries(tmp_path)
    out = tmp_path / "cmp"
    work_dir = run_dir(out, entries[0].label, 0)
    work_dir.mkdir(parents=True)
    (work_dir / "config.yaml").write_text(dump_config(run_config(entries[0], 0)))
    (out / MARKER).write_text('{"written_by": "segdil compare"}\n')
    with work_dir_lock(work_dir):
        assert lock_holder(work_dir) == str(os.getpid())
        with pytest.raises(SegdilError, match=f"PID {os.getpid()}"):
            run_models(entries, 1, out, echo=lambda line: None, live=False)
        assert (work_dir / "config.yaml").is_file()
    assert lock_holder(work_dir) is None


def test_folder_lock_names_the_flag_and_what_holds_it(tmp_path):
    with folder_lock(tmp_path, "--out", "prediction"):
        with pytest.raises(SegdilError) as error:
            with folder_lock(tmp_path, "--out", "prediction"):
                pass
    assert error.value.message.startswith(f"--out {tmp_path}: in use by another prediction process (PID {os.getpid()}")
    with work_dir_lock(tmp_path):
        with pytest.raises(SegdilError, match="--work-dir .* training process"):
            with work_dir_lock(tmp_path):
                pass


WRITE_UNDER_LIMIT = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death, as a shell's `ulimit -f` gives Python
resource.setrlimit(resource.RLIMIT_FSIZE, (20480, 20480))
import torch
from segdil.atomic import save_torch, write_text
for write, target in ((lambda p: write_text(p, "x" * 100000), sys.argv[1] + "/big.txt"), (lambda p: save_torch({"w": torch.zeros(50000)}, p), sys.argv[1] + "/big.pt")):
    try:
        write(target)
    except OSError as exc:
        print(exc.errno, exc.filename)
"""


def test_a_write_over_the_file_size_limit_names_the_file(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", WRITE_UNDER_LIMIT, str(tmp_path)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    import errno

    assert proc.stdout.split("\n")[:2] == [f"{errno.EFBIG} {tmp_path / 'big.txt'}", f"{errno.EFBIG} {tmp_path / 'big.pt'}"], proc.stdout
    assert list(tmp_path.iterdir()) == []  # no temporary left behind
