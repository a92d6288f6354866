"""Plan a comparison: the models and their configs, alike in everything but the model (and what --match scales),
and the rules of its output folder (``--out`` holds only what compare wrote: ``.segdil-compare.json`` marks it)."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segdil.atomic import TEMP_SUFFIX, write_json
from segdil.compare.matching import CostKind, Match, match_models
from segdil.compare.presets import SWEEP_BASE, shipped_config
from segdil.config import Config, load_config, validate_model_section
from segdil.errors import SegdilError
from segdil.output_paths import LOCK_NAME, check_output_folder

MARKER = ".segdil-compare.json"  # written first into --out: the folder is compare's, and may be continued
OUTPUTS = ("report.md", "report.html", "results.json", "figures", "runs", MARKER, LOCK_NAME)  # all compare writes in --out

# with --budget-s alone the step limit is out of reach: the clock ends the run and its schedule
BUDGET_MAX_STEPS = 10**9
# train settings every model must share (data and eval must match in full)
SHARED_TRAIN_KEYS = ("max_steps", "budget_s", "batch_size", "device")


@dataclass
class ModelEntry:
    """One model of the comparison: the config all its seeds start from."""

    label: str
    cfg: Config
    source: str
    pools: int | None = None  # P when this model is a point of the pooling sweep
    match: Match | None = None


def split_overrides(overrides: tuple[str, ...] | list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Separate ``key=value`` (every model) from ``LABEL:key=value`` (models whose label matches the glob LABEL)."""
    shared, scoped = [], []
    for item in overrides:
        key = item.split("=", 1)[0]
        if ":" in key:
            pattern, rest = item.split(":", 1)
            if not pattern.strip():
                raise SegdilError(f"--set {item!r}: the model label before ':' is empty; write LABEL:key=value or key=value")
            scoped.append((pattern.strip(), rest))
        else:
            shared.append(item)
    return shared, scoped


def run_overrides(shared: list[str], steps: int | None, budget_s: float | None, device: str | None) -> list[str]:
    """``--set`` values followed by the settings of ``--steps``, ``--budget-s`` and ``--device`` (which win)."""
    out = list(shared)
    if budget_s is not None:
        out.append(f"train.budget_s={budget_s}")
        out.append(f"train.max_steps={steps if steps is not None else BUDGET_MAX_STEPS}")
    elif steps is not None:
        out.append(f"train.max_steps={steps}")
    if device is not None:
        out.append(f"train.device={device}")
    return out


def _scoped_for(label: str, scoped: list[tuple[str, str]], used: set[str]) -> list[str]:
    chosen = []
    for pattern, item in scoped:
        if fnmatch.fnmatchcase(label, pattern):
            chosen.append(item)
            used.add(pattern)
    return chosen


def _same_run(a: Config, b: Config) -> bool:
    da, db = a.to_dict(), b.to_dict()
    da.pop("name"), db.pop("name")
    return da == db


def plan_models(
    config_paths: list[Path],
    overrides: tuple[str, ...] | list[str] = (),
    *,
    steps: int | None = None,
    budget_s: float | None = None,
    device: str | None = None,
    sweep_pools: list[int] | None = None,
) -> list[ModelEntry]:
    """Load every config with the shared overrides; add the pooling-sweep models; check they are alike.

    A sweep model identical to a listed config (apart from its name) is not trained twice: the
    listed model becomes that point of the sweep.
    """
    shared, scoped = split_overrides(overrides)
    common = run_overrides(shared, steps, budget_s, device)
    used: set[str] = set()
    entries: list[ModelEntry] = []
    for path in config_paths:
        label = Path(path).stem
        if any(e.label == label for e in entries):
            raise SegdilError(f"{path}: a config named {label!r} is already in the comparison; give each config a distinct file name")
        cfg = load_config(path, common + _scoped_for(label, scoped, used))
        cfg.name = label
        entries.append(ModelEntry(label, cfg, str(path)))
    for pools in sweep_pools or []:
        label = f"fcn-pool{pools}"
        base = shipped_config(SWEEP_BASE)
        cfg = load_config(base, common + [f"model.pools={pools}"] + _scoped_for(label, scoped, used))
        cfg.name = label
        twin = next((e for e in entries if _same_run(e.cfg, cfg)), None)
        if twin is not None:
            twin.pools = pools
            continue
        if any(e.label == label for e in entries):
            raise SegdilError(f"--sweep-pools: a config named {label!r} is already in the comparison but differs from the sweep's {label}; rename that config")
        entries.append(ModelEntry(label, cfg, f"{base} (model.pools={pools})", pools=pools))
    if not entries:
        raise SegdilError("no models to compare: pass config files, --preset small-objects or --sweep-pools 1..5")
    unused = sorted({p for p, _ in scoped} - used)
    if unused:
        raise SegdilError(f"--set {unused[0]}:...: matches no model label; the labels are {', '.join(e.label for e in entries)}")
    check_alike(entries)
    return entries


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): tree}


def check_alike(entries: list[ModelEntry]) -> None:
    """Every model must see the same data, evaluation, step limit, budget, batch size and device."""
    first = entries[0]
    reference = _flatten({"data": first.cfg.to_dict()["data"], "eval": first.cfg.to_dict()["eval"]})
    reference.update({f"train.{k}": getattr(first.cfg.train, k) for k in SHARED_TRAIN_KEYS})
    for entry in entries[1:]:
        mine = _flatten({"data": entry.cfg.to_dict()["data"], "eval": entry.cfg.to_dict()["eval"]})
        mine.update({f"train.{k}": getattr(entry.cfg.train, k) for k in SHARED_TRAIN_KEYS})
        for key, value in reference.items():
            if mine.get(key) != value:
                raise SegdilError(
                    f"{entry.label}: {key}={mine.get(key)!r} but {first.label} has {value!r}; every model must be trained and "
                    f"evaluated alike: set it for all with --set {key}=VALUE"
                )


def differing_settings(entries: list[ModelEntry]) -> dict[str, dict[str, Any]]:
    """``train.*`` settings that are not the same for every model: {key: {label: value}}."""
    flat = {e.label: _flatten(e.cfg.to_dict()["train"], "train.") for e in entries}
    keys = sorted({k for f in flat.values() for k in f} - {"train.seed"})
    return {k: {label: f.get(k) for label, f in flat.items()} for k in keys if len({json.dumps(f.get(k), default=str) for f in flat.values()}) > 1}


def data_num_classes(cfg: Config) -> int:
    """How many classes the configured data has: the synthetic benchmark's, a layout's own (VOC, Cityscapes, ADE20K), or a folder's ``classes`` file."""
    # compare's training child imports this module: the dataset readers load inside its measured train()
    if cfg.data.root is None:
        from segdil.data.synth import synth_class_names

        return len(synth_class_names(cfg.data.synth))
    if cfg.data.format != "folder":
        from segdil.data.formats import get_format

        return len(get_format(cfg.data.format).class_names)
    from segdil.data.folder import read_classes

    return len(read_classes(cfg.data.root).names)


def apply_match(entries: list[ModelEntry], kind: CostKind, tolerance: float = 0.1) -> None:
    """Scale the widths of every model to the cost of the first (see ``segdil.compare.matching``)."""
    num_classes = data_num_classes(entries[0].cfg)
    matches = match_models([{**e.cfg.model, "num_classes": num_classes} for e in entries], kind, tolerance=tolerance)
    for entry, match in zip(entries, matches):
        scaled = {k: v for k, v in match.model.items() if k != "num_classes" or "num_classes" in entry.cfg.model}
        entry.cfg.model = validate_model_section(scaled)
        entry.match = match


def _own_temporary(name: str) -> bool:
    """An atomic write's temporary of one of compare's outputs (left by a killed comparison)."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX) and any(name.startswith(f".{own}.") for own in OUTPUTS)


def not_written_by_compare(out: Path) -> Path | None:
    """The first entry of ``out`` that ``segdil compare`` did not write (every entry when ``out`` has no
    marker), or None: the folder holds only an earlier comparison's outputs, which compare continues."""
    entries = sorted(out.iterdir())
    if not (out / MARKER).is_file():
        return entries[0] if entries else None
    for path in entries:
        if path.is_symlink() or (path.name in ("figures", "runs") and not path.is_dir()):
            return path
        if path.name not in OUTPUTS and not _own_temporary(path.name):
            return path
    figures = out / "figures"
    for path in sorted(figures.iterdir()) if figures.is_dir() else []:
        if not (path.suffix == ".png" and path.is_file() and not path.is_symlink()) and not path.name.endswith(TEMP_SUFFIX + ".png"):
            return path
    return None


def check_out(out: str | Path, inputs: list[str | Path] = ()) -> None:
    """Refuse ``--out`` before anything is written: '.', the current folder or one holding it, a
    symbolic link, a folder holding an input or files compare did not write (a user's report.md)."""
    check_output_folder(out, "--out", inputs, foreign=not_written_by_compare, reuse=True)


def mark_out(out: Path, entries: list[ModelEntry]) -> None:
    """Write ``out/.segdil-compare.json``: this folder holds compare's outputs (and which models it compared last)."""
    write_json(Path(out) / MARKER, {"written_by": "segdil compare", "models": [e.label for e in entries]})
