"""Plan, train and aggregate a comparison: every model × every seed, alike in everything else.

Each run trains in a fresh Python process (``python -m segdil.compare.run``, the request on stdin)
so that its peak memory is its own: on CUDA ``torch.cuda.max_memory_allocated``; on the CPU the
rise of the process's peak resident set size during training over its resident size just before
(see :func:`measure_training`). The run writes ``run.json`` beside the usual ``train`` outputs in
``OUT/runs/<label>/seed<k>``; a finished run with the same config is reused, not retrained.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import math
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from segdil.atomic import open_log, write_json
from segdil.bench.memory import peak_rss_bytes, reset_peak_rss, rss_bytes
from segdil.compare.matching import CostKind, Match, match_models
from segdil.compare.presets import SWEEP_BASE, shipped_config
from segdil.config import Config, config_from_dict, dump_config, load_config, validate_model_section
from segdil.errors import SegdilError

# with --budget-s alone the step limit is out of reach; the schedule is computed for this many steps
BUDGET_MAX_STEPS = 10**9
# train() result keys that are not validation metrics
RUN_KEYS = ("work_dir", "step", "train_s", "img_per_s")
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


# --------------------------------------------------------------------------- planning


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
    """How many classes the configured data has (read from its ``classes`` file, or the synthetic benchmark's)."""
    if cfg.data.root is None:
        from segdil.data.synth import synth_class_names

        return len(synth_class_names(cfg.data.synth))
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


# --------------------------------------------------------------------------- running


def run_config(entry: ModelEntry, seed: int) -> Config:
    cfg = copy.deepcopy(entry.cfg)
    cfg.train.seed = seed
    cfg.name = entry.label
    return cfg


def run_dir(out: Path, label: str, seed: int) -> Path:
    return Path(out) / "runs" / label / f"seed{seed}"


def warm_imports(cfg: Config) -> None:
    """Import what ``train()`` imports lazily, so that neither its memory nor its time counts as training."""

    import segmentation_models_pytorch  # noqa: F401  (the training loss imports it)
    import torch

    import segdil.data
    import segdil.data.loader
    import segdil.data.transforms
    import segdil.metrics
    import segdil.train.validate  # noqa: F401
    from segdil.models import create_model_quietly

    try:
        import torch.utils.tensorboard  # noqa: F401  (the run logger writes TensorBoard scalars when it can)
    except ImportError:
        pass
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])  # the first optimizer imports torch._dynamo
    # start autograd's engine and the convolution libraries on a toy layer (their one-time cost is no model's)
    toy = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
    toy(torch.zeros(2, 3, 8, 8)).sum().backward()
    with torch.device("meta"):
        create_model_quietly(**cfg.model)  # smp models import segmentation_models_pytorch


def measure_training(cfg: Config, work_dir: Path) -> dict[str, Any]:
    """Train in this process and return the run record (metrics, speed, peak memory, model args).

    CPU memory is the rise of the peak resident set size during ``train()`` over the resident size
    just before it, after the modules ``train()`` needs are imported; the peak is reset first where
    Linux allows it, so the imports' own peak does not hide it. DataLoader workers are not counted.
    """
    import torch

    from segdil.checkpoint import load_checkpoint
    from segdil.device import resolve_device
    from segdil.train.main import train

    device = resolve_device(cfg.train.device)
    warm_imports(cfg)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    reset = reset_peak_rss()
    rss_before, peak_before = rss_bytes(), peak_rss_bytes()
    result = train(cfg, work_dir=str(work_dir), quiet=False)
    peak_after = peak_rss_bytes()
    baseline = rss_before if reset and rss_before is not None else peak_before
    memory: dict[str, Any] = {
        "cpu_rss_before_bytes": rss_before,
        "cpu_rss_peak_bytes": peak_after,
        "cpu_rss_increase_bytes": max(0, peak_after - baseline),
        "cpu_peak_reset": reset,
    }
    if device.type == "cuda":
        memory.update(kind="cuda_max_allocated", peak_bytes=int(torch.cuda.max_memory_allocated(device)))
    else:
        memory.update(kind="cpu_rss_increase", peak_bytes=memory["cpu_rss_increase_bytes"])
    ckpt = load_checkpoint(Path(work_dir) / "last.pt")
    return {
        "step": result["step"],
        "train_s": result["train_s"],
        "img_per_s": result["img_per_s"],
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch_threads": torch.get_num_threads(),
        "memory": memory,
        "model_args": ckpt["model_args"],
        "class_names": ckpt.get("class_names"),
        "class_colors": ckpt.get("class_colors"),
        "metrics": {k: v for k, v in result.items() if k not in RUN_KEYS},
    }


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def train_isolated(cfg: Config, work_dir: Path, log_path: Path) -> dict[str, Any]:
    """Train ``cfg`` in a fresh Python process; its stdout and stderr go to ``log_path``."""
    request = json.dumps({"config": cfg.to_dict(), "work_dir": str(Path(work_dir).resolve())})
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.unlink(missing_ok=True)  # one run's log, not the history of earlier attempts
    with open_log(log_path) as log:
        proc = subprocess.run([sys.executable, "-m", "segdil.compare.run"], input=request, text=True, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
        last = lines[-1].strip() if lines else "no output"
        raise SegdilError(f"{cfg.name} seed {cfg.train.seed}: training failed (exit {proc.returncode}): {last[:300]} — full log: {log_path}")
    return json.loads((Path(work_dir) / "run.json").read_text())


def _reusable(work_dir: Path, cfg: Config) -> str:
    """``new`` (nothing there), ``done`` (finished, same config), ``partial`` (same config, unfinished), or ``other``."""
    if not work_dir.exists():
        return "new"
    saved = work_dir / "config.yaml"
    if not saved.is_file() or saved.read_text() != dump_config(cfg):
        return "other" if any(work_dir.iterdir()) else "new"
    return "done" if (work_dir / "run.json").is_file() else "partial"


def run_models(entries: list[ModelEntry], seeds: int, out: Path, echo: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Train every model with seeds 0…seeds-1 (seed by seed); returns one record per run."""
    records = []
    total = len(entries) * seeds
    done = 0
    for seed in range(seeds):
        for entry in entries:
            done += 1
            cfg = run_config(entry, seed)
            work_dir = run_dir(out, entry.label, seed)
            state = _reusable(work_dir, cfg)
            if state == "other":
                raise SegdilError(f"{work_dir}: holds a run with a different config; choose another --out or delete that folder")
            if state == "done":
                record = json.loads((work_dir / "run.json").read_text())
                echo(f"[{done}/{total}] {entry.label} seed {seed}: reused {work_dir}")
            else:
                if state == "partial":
                    shutil.rmtree(work_dir)  # an unfinished run of this very config: start it afresh
                log = work_dir.parent / f"seed{seed}.log"
                echo(f"[{done}/{total}] {entry.label} seed {seed}: training (progress in {log})")
                started = time.perf_counter()
                record = train_isolated(cfg, work_dir, log)
                m = record["metrics"]
                echo(
                    f"[{done}/{total}] {entry.label} seed {seed}: mIoU {_fmt(m.get('mIoU'))}, small-object IoU "
                    f"{_fmt(m.get('small_object_iou'))}, {record['step']} steps, {time.perf_counter() - started:.0f} s"
                )
            record.update(label=entry.label, seed=seed, work_dir=str(work_dir))
            records.append(record)
    return records


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"


# --------------------------------------------------------------------------- aggregation


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def summarize(values: list[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (n−1; None for one value) and n."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return {"mean": mean, "std": std, "n": n}


def aggregate(values: list[Any]) -> Any:
    """Mean ± std over seeds of every number in a list of like-shaped metric trees.

    Numbers become ``{mean, std, n}`` (None and NaN values are left out, so ``n`` can be below the
    number of seeds); dicts and lists are aggregated key by key and element by element; other values
    are kept when all seeds agree.
    """
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not present:
        return None
    if all(isinstance(v, dict) for v in present):
        keys: list[str] = []
        for v in present:
            keys.extend(k for k in v if k not in keys)
        return {k: aggregate([v.get(k) for v in present]) for k in keys}
    if all(isinstance(v, (list, tuple)) for v in present):
        length = max(len(v) for v in present)
        return [aggregate([v[i] if i < len(v) else None for v in present]) for i in range(length)]
    if all(_number(v) for v in present):
        return summarize([float(v) for v in present])
    return present[0] if all(v == present[0] for v in present) else None


def aggregate_runs(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model label: metrics, speed, steps and peak memory aggregated over its seeds."""
    by_label: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_label.setdefault(record["label"], []).append(record)
    return {
        label: {
            "seeds": [r["seed"] for r in runs],
            "metrics": aggregate([r["metrics"] for r in runs]),
            "img_per_s": aggregate([r["img_per_s"] for r in runs]),
            "train_s": aggregate([r["train_s"] for r in runs]),
            "step": aggregate([r["step"] for r in runs]),
            "peak_memory_bytes": aggregate([r["memory"]["peak_bytes"] for r in runs]),
        }
        for label, runs in by_label.items()
    }


def describe_models(entries: list[ModelEntry], records: list[dict[str, Any]], kind: str | None, tolerance: float) -> list[dict[str, Any]]:
    """Per model: the trained constructor arguments, parameters, GFLOPs per megapixel, matching outcome."""
    from segdil.compare.matching import COST_SIZE, is_scalable, model_cost

    out = []
    for entry in entries:
        record = next(r for r in records if r["label"] == entry.label)
        args = record["model_args"]
        flops = model_cost(args, "flops", size=COST_SIZE)
        item: dict[str, Any] = {
            "label": entry.label,
            "source": entry.source,
            "pools": entry.pools,
            "model_args": args,
            "params": model_cost(args, "params"),
            "flops_256": flops,
            "gflops_per_mp": flops / COST_SIZE**2 / 1e3,
            "scalable": is_scalable(args),
            "match": None,
        }
        if entry.match is not None:
            match = entry.match
            item["match"] = {
                "kind": kind,
                "factor": match.factor,
                "cost": match.cost,
                "reference_cost": match.target,
                "ratio": match.ratio,
                "within": match.within,
                "scalable": match.scalable,
                "note": "reference" if entry is entries[0] else match.note(kind, tolerance),
            }
        out.append(item)
    return out


def build_results(
    entries: list[ModelEntry],
    records: list[dict[str, Any]],
    *,
    settings: dict[str, Any],
    environment: dict[str, Any],
    tolerance: float = 0.1,
) -> dict[str, Any]:
    """Everything the report shows, as one JSON-ready dict (written as ``results.json``)."""
    from segdil.metrics import bin_labels

    first = entries[0].cfg
    aggregates = aggregate_runs(records)
    labels = bin_labels(first.eval.size_bins)
    first_bins = (aggregates[entries[0].label]["metrics"] or {}).get("bins") or {}
    counts = {b: ((first_bins.get(b) or {}).get("count") or {}).get("mean") for b in labels}
    sweep = sorted(({"label": e.label, "pools": e.pools} for e in entries if e.pools is not None), key=lambda s: s["pools"])
    return {
        "settings": {
            **settings,
            "max_steps": first.train.max_steps,
            "budget_s": first.train.budget_s,
            "batch_size": first.train.batch_size,
            "data": first.to_dict()["data"],
            "eval": first.to_dict()["eval"],
            "differing_train_settings": differing_settings(entries),
        },
        "environment": environment,
        "size_bins": list(first.eval.size_bins),
        "bin_labels": labels,
        "bin_counts": counts,
        "small_threshold": first.eval.small_threshold,
        "models": describe_models(entries, records, settings.get("match"), tolerance),
        "sweep": sweep,
        "aggregate": aggregates,
        "runs": records,
    }


# --------------------------------------------------------------------------- child process


def _child_main() -> None:
    request = json.loads(sys.stdin.read())
    cfg = config_from_dict(request["config"])
    work_dir = Path(request["work_dir"])
    try:
        record = measure_training(cfg, work_dir)
    except SegdilError as exc:
        print(f"Error: {exc.format_message()}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    write_json(work_dir / "run.json", record, default=_json_default)


if __name__ == "__main__":
    _child_main()
