"""Bad-input rows: what no command may overwrite or delete (issue #30).

``data synth OUT --overwrite`` replaces only a folder that its manifest (``.segdil-synth.json``) says it
wrote; ``compare --out`` writes only into a new, empty or earlier comparison's folder; a file output is
never an input, also through a symbolic or hard link."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from bad_input_kit import CONFIG, dataset, invoke

SYNTH = ["--size", "16", "--n-train", "1", "--n-val", "1"]


def _synth(out: Path | str, *extra) -> list:
    return ["data", "synth", out, *SYNTH, *extra]


def _user_folder(t: Path) -> Path:
    (t / "d" / "sub").mkdir(parents=True)
    (t / "d" / "notes.txt").write_text("mine\n")
    (t / "d" / "sub" / "thesis.docx").write_bytes(b"years of work")
    return t / "d"


def _own_output_plus(t: Path) -> Path:
    """An earlier data synth output to which the user added a file."""
    assert invoke(_synth(t / "d")).exit_code == 0
    (t / "d" / "train" / "images" / "mine.png").write_bytes(b"not segdil's")
    return t / "d"


def _symlinked(t: Path) -> Path:
    assert invoke(_synth(t / "real")).exit_code == 0
    (t / "ulink").symlink_to(t / "real", target_is_directory=True)
    return t / "ulink"


def _compare(out: Path | str, config: Path | str = CONFIG) -> list:
    return ["compare", config, "--seeds", 1, "--steps", 1, "--device", "cpu", "--out", out]


def _user_report(t: Path) -> Path:
    (t / "out").mkdir()
    (t / "out" / "report.md").write_text("# my report\n")
    (t / "out" / "results.json").write_text('{"mine": true}\n')
    return t / "out"


def _config_in(t: Path) -> Path:
    (t / "cfgs").mkdir()
    return Path(shutil.copy(CONFIG, t / "cfgs" / "c.yaml"))


def _hardlinked_config(t: Path) -> list:
    config = Path(shutil.copy(CONFIG, t / "c.yaml"))
    os.link(config, t / "plot.png")
    return ["rf", "--config", config, "--plot", t / "plot.png", "--overwrite"]


CASES: dict[str, tuple[Callable[[Path], list], int, tuple[str, ...]]] = {
    # data synth --overwrite replaces only what data synth wrote
    "synth-overwrite-user-folder": (lambda t: _synth(_user_folder(t), "--overwrite"), 2, ("notes.txt", "did not write")),
    "synth-overwrite-real-dataset": (lambda t: _synth(dataset(t / "data"), "--overwrite"), 2, ("classes.yaml", "did not write")),
    "synth-overwrite-dataset-split": (lambda t: _synth(dataset(t / "data") / "train", "--overwrite"), 2, ("images", "did not write")),
    "synth-overwrite-own-output-plus-user-file": (lambda t: _synth(_own_output_plus(t), "--overwrite"), 2, ("mine.png", "did not write")),
    "synth-existing-without-overwrite": (lambda t: _synth((invoke(_synth(t / "d")), t / "d")[1]), 2, ("not empty", "earlier output", "--overwrite")),
    "synth-symlinked-out": (lambda t: _synth(_symlinked(t), "--overwrite"), 2, ("ulink", "symbolic link")),
    "synth-dot": (lambda t: _synth(".", "--overwrite"), 2, ("'.'",)),
    "synth-dotdot": (lambda t: _synth("..", "--overwrite"), 2, ("'..'",)),
    "synth-current-folder": (lambda t: _synth(t, "--overwrite"), 2, ("current folder",)),
    "synth-parent-of-current-folder": (lambda t: _synth(t.parent, "--overwrite"), 2, ("current folder or holds it",)),
    "synth-out-is-a-file": (lambda t: _synth((t / "f.txt").write_text("x") and t / "f.txt", "--overwrite"), 2, ("f.txt",)),
    "synth-no-images": (lambda t: ["data", "synth", t / "d", "--n-train", 0, "--n-val", 0], 2, ("n_train", "no images")),
    "synth-huge-size": (lambda t: ["data", "synth", t / "d", "--size", 100000], 2, ("100000", "GB", "free")),
    "synth-huge-street": (lambda t: ["data", "synth", t / "d", "--scene", "street", "--size", "200000x100000"], 2, ("100000", "GB")),
    # compare --out holds only compare's own outputs
    "compare-out-holds-user-report": (lambda t: _compare(_user_report(t)), 2, ("--out", "report.md", "did not write")),
    "compare-out-holds-user-file": (lambda t: _compare((t / "o").mkdir() or (t / "o" / "notes.txt").write_text("x") and t / "o"), 2, ("notes.txt", "did not write")),
    "compare-out-dot": (lambda t: _compare("."), 2, ("--out", "'.'")),
    "compare-out-current-folder": (lambda t: _compare(t), 2, ("--out", "current folder")),
    "compare-out-holds-the-config": (lambda t: _compare(t / "cfgs", _config_in(t)), 2, ("--out", "c.yaml", "input")),
    "compare-out-symlink": (lambda t: _compare(((t / "real").mkdir(), (t / "l").symlink_to(t / "real"), t / "l")[2]), 2, ("--out", "symbolic link")),
    # file outputs: an input reached through a link is still the input
    "rf-plot-hardlink-of-config": (_hardlinked_config, 2, ("plot.png", "is the input")),
    "rf-erf-symlink-to-config": (lambda t: ["rf", "--config", (c := Path(shutil.copy(CONFIG, t / "c.yaml"))), "--erf", ((t / "e.png").symlink_to(c), t / "e.png")[1], "--overwrite"], 2, ("e.png", "is the input")),
}
