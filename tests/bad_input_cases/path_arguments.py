"""A generated table of bad-input rows (issue #30): every path argument of every command, given a path that
does not exist, an empty file or folder, a folder where a file belongs (or a file where a folder belongs),
a symbolic-link loop, a file it may not read, a name over the file system's 255-character limit, and for
outputs the command's own input, a file standing where a parent folder belongs and a folder it may not write.

``COMMANDS`` lists each path argument with a valid invocation around it; ``tests/test_path_arguments.py``
checks that the list covers every ``click.Path`` parameter of the CLI, so a new path option gets its rows."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bad_input_kit import CONFIG, TINY, checkpoint, dataset

from segdil.config import dump_config, load_config

AS_ROOT = os.geteuid() == 0  # permissions do not stop root: the unreadable and unwritable rows need a user
LONG = "n" * 300  # over NAME_MAX (255)


@dataclass(frozen=True)
class PathArgument:
    """One path argument: ``args(t, value)`` is a valid command line with ``value`` in this argument's place
    (``value=None``: the valid path), ``kind`` is what it names, ``ext`` the suffix of its bad variants."""

    command: str  # "data check", "train", ...
    param: str  # the option without its dashes (work_dir for --work-dir) or the argument's name
    role: str  # "in" or "out"
    kind: str  # "file", "dir" or "either"
    ext: str
    args: Callable[[Path, Path | None], list]
    needle: str  # the error line names this (an option) or, where "", the path
    has_input: bool = True  # False: the command reads no path, so no output can be its input


def _config(t: Path) -> Path:
    """A valid config standing alone (no ``base:``), training the tiny model a step on tiny images."""
    (t / "c.yaml").write_text(dump_config(load_config(CONFIG, TINY)))
    return t / "c.yaml"


def _ckpt(t: Path) -> Path:
    return checkpoint(t / "model.pt")


def _pred(t: Path) -> tuple[Path, Path]:
    gt = dataset(t / "data") / "val" / "masks"
    shutil.copytree(gt, t / "pred")
    return t / "pred", gt


def _eval_ckpt(t: Path, ckpt=None, data=None, json=None, confusion=None) -> list:
    args = ["eval", "--checkpoint", ckpt or _ckpt(t), "--data", data or dataset(t / "data"), "--device", "cpu"]
    if json:
        args += ["--json", json]
    if confusion:
        args += ["--confusion", confusion]
    return args


def _eval_pred(t: Path, pred=None, gt=None) -> list:
    good_pred, good_gt = _pred(t)
    return ["eval", "--pred", pred or good_pred, "--gt", gt or good_gt, "--num-classes", "3"]


BENCH = ["--no-data", "--device", "cpu", "--steps", "1", "--warmup", "0", "--size", "16"]


def _bench_model(t: Path, v) -> list:
    return ["bench", "--model", v or _config(t), *BENCH, "--train"]


def _bench_predict(t: Path, ckpt=None, json=None) -> list:
    args = ["bench", "--model", "hdc", *BENCH, "--infer", "--predict", "--checkpoint", ckpt or _ckpt(t), "--predict-images", "1"]
    return args + (["--json", json] if json else [])


COMMANDS: list[PathArgument] = [
    PathArgument("data check", "root", "in", "dir", "", lambda t, v: ["data", "check", v or dataset(t / "data")], ""),
    PathArgument("data synth", "out", "out", "dir", "", lambda t, v: ["data", "synth", v or t / "synth", "--size", "16", "--n-train", "1", "--n-val", "1"], "", has_input=False),
    PathArgument("train", "config", "in", "file", ".yaml", lambda t, v: ["train", v or _config(t), "--work-dir", t / "run"], ""),
    PathArgument("train", "work_dir", "out", "dir", "", lambda t, v: ["train", _config(t), "--work-dir", v or t / "run"], ""),
    PathArgument("eval", "pred", "in", "dir", "", lambda t, v: _eval_pred(t, pred=v), ""),
    PathArgument("eval", "gt", "in", "dir", "", lambda t, v: _eval_pred(t, gt=v), ""),
    PathArgument("eval", "checkpoint", "in", "file", ".pt", lambda t, v: _eval_ckpt(t, ckpt=v), ""),
    PathArgument("eval", "data", "in", "dir", "", lambda t, v: _eval_ckpt(t, data=v), ""),
    PathArgument("eval", "json", "out", "file", ".json", lambda t, v: _eval_ckpt(t, json=v or t / "m.json"), "--json"),
    PathArgument("eval", "confusion", "out", "file", ".png", lambda t, v: _eval_ckpt(t, confusion=v or t / "c.png"), "--confusion"),
    PathArgument("predict", "checkpoint", "in", "file", ".pt", lambda t, v: ["predict", v or _ckpt(t), dataset(t / "data") / "val" / "images", "--out", t / "pred", "--device", "cpu"], ""),
    PathArgument("predict", "inputs", "in", "either", ".png", lambda t, v: ["predict", _ckpt(t), v or dataset(t / "data") / "val" / "images", "--out", t / "pred", "--device", "cpu"], ""),
    PathArgument("predict", "out", "out", "dir", "", lambda t, v: ["predict", _ckpt(t), dataset(t / "data") / "val" / "images", "--out", v or t / "pred", "--device", "cpu"], "--out"),
    PathArgument("export", "checkpoint", "in", "file", ".pt", lambda t, v: ["export", v or _ckpt(t), "--onnx", t / "m.onnx", "--height", "16", "--width", "16"], ""),
    PathArgument("export", "onnx", "out", "file", ".onnx", lambda t, v: ["export", _ckpt(t), "--onnx", v or t / "m.onnx", "--height", "16", "--width", "16"], "--onnx"),
    PathArgument("rf", "config", "in", "file", ".yaml", lambda t, v: ["rf", "--config", v or _config(t)], ""),
    PathArgument("rf", "checkpoint", "in", "file", ".pt", lambda t, v: ["rf", "--checkpoint", v or _ckpt(t)], ""),
    PathArgument("rf", "plot", "out", "file", ".png", lambda t, v: ["rf", "--config", _config(t), "--plot", v or t / "p.png"], "--plot"),
    PathArgument("rf", "erf", "out", "file", ".png", lambda t, v: ["rf", "--checkpoint", _ckpt(t), "--erf", v or t / "e.png"], "--erf"),
    PathArgument("compare", "configs", "in", "file", ".yaml", lambda t, v: ["compare", v or _config(t), "--seeds", "1", "--steps", "1", "--out", t / "cmp"], ""),
    PathArgument("compare", "out", "out", "dir", "", lambda t, v: ["compare", _config(t), "--seeds", "1", "--steps", "1", "--out", v or t / "cmp"], "--out"),
    PathArgument("bench", "model", "in", "file", ".yaml", _bench_model, ""),
    PathArgument("bench", "checkpoint", "in", "file", ".pt", lambda t, v: _bench_predict(t, ckpt=v), ""),
    PathArgument("bench", "json", "out", "file", ".json", lambda t, v: _bench_predict(t, json=v or t / "b.json"), "--json"),
    PathArgument("bench", "plot", "out", "file", ".png", lambda t, v: ["bench", "--model", "hdc", *BENCH, "--infer", "--sizes", "16", "--plot", v or t / "s.png"], "--plot", has_input=False),
]


def _loop(t: Path, name: str) -> Path:
    (t / name).symlink_to(t / name)
    return t / name


def _no_write(t: Path) -> Path:
    (t / "locked").mkdir()
    (t / "locked").chmod(0o555)
    return t / "locked"


def _no_read(t: Path, a: PathArgument) -> Path:
    path = t / f"secret{a.ext}"
    if a.kind == "dir":
        path.mkdir()
    else:
        path.write_text("x\n")
    path.chmod(0)
    return path


def _the_input(t: Path, a: PathArgument) -> Path:
    """The command's first input path in its valid invocation: what an output must never be."""
    given = [x for x in a.args(t, None) if isinstance(x, Path) and x.exists()]
    return given[0] if a.kind == "file" or given[0].is_dir() else given[0].parent


def _variants(a: PathArgument) -> dict[str, tuple[Callable[[Path], Path], str]]:
    """variant -> (make the bad path in the test folder, a part of its name the error line shows)."""
    name = f"x{a.ext}"
    if a.kind == "file":
        wrong_kind = (lambda t: (t / f"folder{a.ext}").mkdir() or t / f"folder{a.ext}", f"folder{a.ext}")
    else:
        wrong_kind = (lambda t: (t / "plain").write_text("x\n") and t / "plain", "plain")
    if a.role == "in":
        rows = {
            "missing": (lambda t: t / f"missing{a.ext}", f"missing{a.ext}"),
            "empty": ((lambda t: (t / "empty").mkdir() or t / "empty") if a.kind == "dir" else (lambda t: (t / f"empty{a.ext}").write_bytes(b"") or t / f"empty{a.ext}"), "empty"),
            "symlink-loop": (lambda t: _loop(t, name), name),
            "long-name": (lambda t: t / (LONG + a.ext), "nnnnnnnnnn"),
        }
        if a.kind != "either":
            rows["wrong-kind"] = wrong_kind
        if not AS_ROOT:
            rows["unreadable"] = (lambda t: _no_read(t, a), "secret")
        return rows
    rows = {
        "wrong-kind": wrong_kind,
        "parent-is-a-file": (lambda t: ((t / "plain").write_text("x\n"), t / "plain" / name)[1], "plain"),
        "long-name": (lambda t: t / (LONG + a.ext), "nnnnnnnnnn"),
        "symlink-loop": (lambda t: _loop(t, name), name),
    }
    if a.has_input:
        rows["is-the-input"] = (lambda t: _the_input(t, a), "input")
    if not AS_ROOT:
        rows["unwritable"] = (lambda t: _no_write(t) / name, "locked")
    return rows


def _row(a: PathArgument, make: Callable[[Path], Path]):
    def setup(t: Path) -> list:
        return a.args(t, make(t))

    return setup


CASES = {
    f"path-{a.command.replace(' ', '-')}-{a.param}-{variant}": (_row(a, make), 2, tuple(n for n in (a.needle, shown) if n))
    for a in COMMANDS
    for variant, (make, shown) in _variants(a).items()
}
