"""The training script, top to bottom: config → data → model → loop → checkpoints.

``tools/train.py CONFIG`` and ``segdil train CONFIG`` both run :func:`train`. Under torchrun each
process trains on its shard with DDP; only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from segdil.atomic import TEMP_SUFFIX, write_json, write_text
from segdil.checkpoint import check_state_shapes, checkpoint_state_dict, load_checkpoint, save_checkpoint
from segdil.config import (
    RESUMABLE_KEYS,
    Config,
    check_model_args,
    check_training_memory,
    dump_config,
    resume_changes,
    with_defaults,
)
from segdil.data import build_datasets
from segdil.data.loader import build_loader
from segdil.device import autocast, resolve_device, train_amp
from segdil.errors import SegdilError, shown
from segdil.models import count_params, create_model, model_class
from segdil.train.distributed import DistInfo, cleanup_distributed, setup_distributed
from segdil.train.lock import work_dir_lock
from segdil.train.logger import RunLogger
from segdil.train.losses import SegmentationLoss
from segdil.train.optim import build_optimizer, schedule_notes, set_learning_rate
from segdil.train.sampler import ResumableSampler
from segdil.train.state import STUB_FILES, is_stub, resolve_work_dir, rng_state, seed_everything, set_rng_state
from segdil.train.validate import validate
from segdil.train.warm_start import read_init_from, warm_start


class StopRequested(Exception):
    """Raised inside the loop after SIGINT/SIGTERM, once the current step has finished."""


def train(cfg: Config, work_dir: str | None = None, resume: bool = False, quiet: bool = False) -> dict[str, Any]:
    """Train ``cfg``; returns the last validation metrics. Writes into the run's work dir.

    Before anything is written: the model arguments (weight files and names included) are tried
    on the meta device and what a step holds is weighed against the machine's memory, the work dir
    is checked (``resolve_work_dir``), with ``resume`` the config is compared with the run's
    (``check_resume_config``), the data is checked and a ``train.init_from`` checkpoint is read and
    matched against the model. The work dir is then locked for the run's life (``train/lock.py``).
    """
    tc = cfg.train
    if model_class(cfg.model["name"]).is_classifier:
        raise SegdilError(f"model.name={cfg.model['name']!r} is an image classifier; tools/train.py trains segmentation models")
    check_training_memory(cfg, check_model_args(cfg.model, weights=True))
    device, dist_info = setup_device(tc.device)
    amp = train_amp(tc.precision, device)
    torch.backends.cudnn.benchmark = not tc.deterministic
    if tc.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)

    # ---- run folder, resume state, data: everything checked before anything is written
    path = shared_work_dir(resolve_work_dir(cfg.name, work_dir, resume), dist_info)
    ckpt = load_checkpoint(path / "last.pt") if resume else None
    if ckpt is not None:
        check_resume_config(path, ckpt, cfg)
    seed_everything(tc.seed)
    train_ds, val_ds, class_names = build_datasets(cfg.data, seed=tc.seed)
    num_classes = len(class_names)
    # every constructor argument, defaults included: a checkpoint rebuilds the model it trained even after a default changes
    model_args = with_defaults({**cfg.model, "num_classes": num_classes})
    if cfg.model.get("num_classes", num_classes) != num_classes:
        raise SegdilError(f"model.num_classes={cfg.model['num_classes']} but the data has {num_classes} classes ({', '.join(class_names)}); remove model.num_classes")
    check_model_args(model_args)
    init = read_init_from(tc.init_from, model_args) if tc.init_from and ckpt is None else None  # resuming: last.pt's weights
    if dist_info.is_main:
        make_work_dir(path)
    with write_errors_reported(path), work_dir_lock(path, enabled=dist_info.is_main):
        if dist_info.is_main:
            remove_stale_temporaries(path)
            if not resume and is_stub(path):
                clear_stub(path)
            write_text(path / "config.yaml", dump_config(cfg))
        return _train(cfg, path, ckpt, dist_info, device, amp, train_ds, val_ds, class_names, model_args, quiet, init)


def _train(
    cfg: Config, path: Path, ckpt, dist_info: DistInfo, device: torch.device, amp: bool, train_ds, val_ds, class_names: list[str], model_args: dict[str, Any], quiet: bool, init: dict[str, Any] | None
) -> dict[str, Any]:
    """The run itself, in a work dir that this process holds."""
    tc = cfg.train
    log = RunLogger(path, enabled=dist_info.is_main and not quiet, total_steps=tc.max_steps, budget_s=tc.budget_s)

    # ---- model, optimizer, schedule, loaders
    memory_format = torch.channels_last if tc.channels_last else torch.contiguous_format
    run = Run.build(cfg, model_args, dist_info, device, memory_format, path, class_names, getattr(train_ds, "class_colors", None), init=init, echo=log.echo)
    log.echo(run_summary(cfg, count_params(run.model), len(train_ds), len(val_ds), device, path))
    for note in schedule_notes(tc):
        log.echo(note)
    step, best, metrics = 0, None, {}
    if ckpt is not None:
        step, best, metrics = run.restore(ckpt)
        log.echo(f"resumed from {path / 'last.pt'} at step {step}")
    train_model = DistributedDataParallel(run.model, device_ids=[device.index] if device.type == "cuda" else None) if dist_info.enabled else run.model
    if tc.compile:
        train_model = torch.compile(train_model)
    loader, val_loader = build_loaders(cfg, train_ds, val_ds, dist_info, start=step * tc.batch_size, device=device)

    # ---- the loop
    train_model.train()
    started, seen, prior_s = time.perf_counter(), 0, run.train_s
    batches = iter(loader)
    with signals_caught() as stop:
        try:
            while step < tc.max_steps:
                images, masks = next(batches)
                lr = set_learning_rate(run.optimizer, tc, step, run.train_s)
                loss = run.step(train_model, images, masks, amp, step)
                step += 1
                seen += images.shape[0] * dist_info.world_size
                elapsed = time.perf_counter() - started
                run.train_s = training_clock(prior_s + elapsed, tc.budget_s, dist_info, device)
                log.step(step, loss=loss, lr=lr, img_per_s=seen / max(elapsed, 1e-9), every=tc.log_every, train_s=run.train_s)

                budget_over = tc.budget_s is not None and run.train_s >= tc.budget_s
                last = step == tc.max_steps or budget_over
                if step % tc.val_every == 0 or last:
                    metrics, best = run.validate(val_loader, log, step, best, amp)
                if step % tc.ckpt_every == 0 or last:
                    run.save("last.pt", step, metrics, best)
                if stop["signal"] is not None:
                    raise StopRequested
                if budget_over:
                    log.echo(f"train.budget_s={tc.budget_s} reached at step {step}")
                    break
        except StopRequested:
            run.save("last.pt", step, metrics, best)
            name = signal.Signals(stop["signal"]).name
            log.echo(f"{name} received: saved {path / 'last.pt'} at step {step}; continue with --resume --work-dir {path}")
            raise SystemExit(128 + stop["signal"]) from None
        finally:
            log.close()
            train_model = batches = None  # the wrapper must be collectable before the group goes
            cleanup_distributed()
    result = {"work_dir": str(path), "step": step, "train_s": time.perf_counter() - started, "img_per_s": seen / max(time.perf_counter() - started, 1e-9), **metrics}
    if dist_info.is_main:
        write_json(path / "final_metrics.json", result)
    return result


def run_summary(cfg: Config, params: int, n_train: int, n_val: int, device: torch.device, path: Path) -> str:
    """The one line a run starts with; the resolved config is the work dir's ``config.yaml``."""
    data = cfg.data
    source = f"synthetic {data.synth.scene} {data.synth.size} px" if data.root is None else f"{data.format} {data.root}"
    steps = f"{cfg.train.max_steps:,} steps" + (f" or {cfg.train.budget_s:g} s" if cfg.train.budget_s is not None else "")
    return (
        f"training {cfg.model['name']} ({params:,} parameters) on {source} ({n_train:,} train / {n_val:,} val images), "
        f"{steps}, batch {cfg.train.batch_size}, {device}; work dir {path} (resolved config: {path / 'config.yaml'})"
    )


def check_resume_config(path: Path, ckpt: dict[str, Any], cfg: Config) -> None:
    """``--resume`` continues the run in ``path``: only ``RESUMABLE_KEYS`` may differ from its config."""
    saved = ckpt.get("config")
    if not isinstance(saved, dict):
        return
    changed = resume_changes(saved, cfg.to_dict())
    if changed:
        new = cfg.to_dict()

        def value(d: dict, key: str) -> str:
            for part in key.split("."):
                d = d.get(part) if isinstance(d, dict) else None
            return shown(d, 40)

        diffs = ", ".join(f"{k} ({value(saved, k)} -> {value(new, k)})" for k in changed[:6]) + (f" (+{len(changed) - 6} more)" if len(changed) > 6 else "")
        raise SegdilError(
            f"--resume {path}: the config differs from the run's in {diffs}; on resume only {', '.join(k for k in RESUMABLE_KEYS if k != 'name')} may change. "
            f"Start a new run in another --work-dir (--set train.init_from={path / 'last.pt'} starts it from these weights)"
        )


def make_work_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SegdilError(f"--work-dir {path}: cannot create it ({exc.strerror or type(exc).__name__})") from None


def remove_stale_temporaries(path: Path) -> None:
    """Temporaries a killed run left beside its files (``.last.pt.<random>.tmp``): this process
    holds the lock, so no other writer owns them."""
    for tmp in path.glob(f".*{TEMP_SUFFIX}"):
        if tmp.is_file():
            tmp.unlink()


def clear_stub(path: Path) -> None:
    """A work dir left by a run that never saved holds no results: its logs start afresh."""
    for name in STUB_FILES - {".lock"}:
        target = path / name
        if target.is_dir():
            for item in target.rglob("*"):
                if item.is_file():
                    item.unlink()
        elif target.exists():
            target.unlink()


@contextlib.contextmanager
def write_errors_reported(path: Path) -> Iterator[None]:
    """A failed write (read-only folder, disk full, file size limit) stops the run with one line
    naming the file and the cause; the checkpoints already written stay complete (atomic writes)."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or path
        raise SegdilError(
            f"{where}: cannot write ({exc.strerror or type(exc).__name__}); training stopped. "
            f"Complete checkpoints in {path} are intact; free space or fix permissions, then --resume"
        ) from None


@dataclass
class Run:
    """What one training run holds: the model and its optimisation, where it writes, what it saves."""

    cfg: Config
    model_args: dict[str, Any]
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    criterion: torch.nn.Module
    device: torch.device
    memory_format: torch.memory_format
    path: Path
    class_names: list[str]
    class_colors: list | None
    writes: bool
    train_s: float = 0.0  # seconds of training so far, across resumes: the clock of train.budget_s

    @classmethod
    def build(
        cls, cfg: Config, model_args: dict[str, Any], dist_info: DistInfo, device: torch.device, memory_format: torch.memory_format, path: Path, class_names: list[str], class_colors: list | None,
        init: dict[str, Any] | None = None, echo: Callable[[str], None] = print,
    ) -> "Run":
        """The model (warm-started from the checkpoint ``init`` of ``train.init_from``, summary to
        ``echo``), then its optimizer, loss and where it writes."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore" if not dist_info.is_main else "default")
            model = create_model(**model_args)
        if init is not None:
            warm_start(model, init, echo=echo)
        if cfg.train.sync_bn and dist_info.enabled:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = model.to(device, memory_format=memory_format)
        optimizer = build_optimizer(model, cfg.train)
        criterion = SegmentationLoss(cfg.train.loss, len(class_names)).to(device)
        return cls(cfg, model_args, model, optimizer, criterion, device, memory_format, path, list(class_names), class_colors, dist_info.is_main)

    def validate(self, val_loader, log: RunLogger, step: int, best: float | None, amp: bool) -> tuple[dict[str, Any], float | None]:
        """Validation metrics at ``step``; a new best score writes ``best.pt``. Returns metrics and best."""
        tc = self.cfg.train
        metrics, samples = validate(self.model, val_loader, len(self.class_names), self.cfg, self.device, autocast(self.device, amp), keep=4 if log.tb else 0)
        self.model.train()
        log.overlays(step, samples, self.cfg.data.mean, self.cfg.data.std, self.class_colors)
        score = metrics.get(tc.best_metric)
        if score is None and tc.best_metric not in metrics:
            raise SegdilError(f"train.best_metric={tc.best_metric!r} is not a validation metric; choose one of {', '.join(k for k, v in metrics.items() if isinstance(v, (int, float)))}")
        log.validation(step, metrics, self.class_names)
        if score is not None and not math.isnan(score) and (best is None or score > best):
            best = score
            self.save("best.pt", step, metrics, best)
        return metrics, best

    def restore(self, ckpt: dict[str, Any]) -> tuple[int, float | None, dict[str, Any]]:
        """Weights, optimizer, clock and RNG states of ``last.pt``; returns step, best score, metrics."""
        check_state_shapes(self.model, checkpoint_state_dict(ckpt), ckpt.get("_path", "last.pt"))  # one line, not torch's list
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.train_s = float(ckpt.get("train_s", 0.0))
        set_rng_state(ckpt["rng"])
        return ckpt["step"], ckpt.get("best"), ckpt.get("metrics", {})

    def step(self, train_model: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor, amp: bool, step: int) -> float:
        """One optimisation step; returns the loss. A non-finite loss stops the run."""
        tc = self.cfg.train
        images = images.to(self.device, non_blocking=True, memory_format=self.memory_format)
        masks = masks.to(self.device, non_blocking=True)
        with autocast(self.device, amp):
            logits = train_model(images)
        loss = self.criterion(logits, masks)
        if not torch.isfinite(loss):
            raise SegdilError(
                f"step {step + 1}: the loss is {loss.item()}; stopped. The last good checkpoint is {self.path / 'last.pt'}. "
                "Lower train.lr or set train.grad_clip"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if tc.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
        self.optimizer.step()
        return loss.item()

    def save(self, name: str, step: int, metrics: dict[str, Any], best: float | None) -> None:
        """Write ``name`` (``last.pt``, ``best.pt``) atomically; only rank 0 writes."""
        if not self.writes:
            return
        state = {
            "model_args": self.model_args,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "train_s": self.train_s,
            "scaler": None,  # bf16 autocast needs no loss scaling
            "step": step,
            "data_position": step * self.cfg.train.batch_size,
            "rng": rng_state(),
            "config": self.cfg.to_dict(),
            "class_names": self.class_names,
            "class_colors": self.class_colors,
            "metrics": metrics,
            "best": best,
        }
        save_checkpoint(state, self.path / name)


def build_loaders(cfg: Config, train_ds, val_ds, dist_info: DistInfo, start: int, device: torch.device):
    """The training loader (resumable at sample ``start``) and this rank's validation shard."""
    tc = cfg.train
    sampler = ResumableSampler(len(train_ds), seed=tc.seed, rank=dist_info.rank, world_size=dist_info.world_size, start=start)
    loader = build_loader(train_ds, tc.batch_size, sampler=sampler, num_workers=cfg.data.num_workers, drop_last=True, seed=tc.seed, device=device)
    # folder images may differ in size and cannot share a batch unless padded to one size
    val_batch = max(1, tc.batch_size // 2) if cfg.data.root is None else 1
    val_shard = torch.utils.data.Subset(val_ds, range(dist_info.rank, len(val_ds), dist_info.world_size))
    return loader, build_loader(val_shard, val_batch, num_workers=cfg.data.num_workers, seed=tc.seed, device=device, announce=False)


def setup_device(name: str) -> tuple[torch.device, DistInfo]:
    """The training device; under torchrun the process group, each rank on its own GPU."""
    device = resolve_device(name)
    dist_info = setup_distributed(device)
    if device.type == "cuda" and dist_info.enabled:
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    return device, dist_info


def shared_work_dir(path: Path, dist_info: DistInfo) -> Path:
    """Every rank has checked its work dir; now all take rank 0's, before anyone writes."""
    if not dist_info.enabled:
        return path
    shared = [str(path)]
    dist.broadcast_object_list(shared, src=0)
    dist.barrier()
    return Path(shared[0])


def training_clock(elapsed_s: float, budget_s: float | None, dist_info: DistInfo, device: torch.device) -> float:
    """Seconds of training so far; with ``train.budget_s`` under DDP the slowest rank's, so that all
    ranks set one learning rate and stop at one step."""
    if budget_s is None or not dist_info.enabled:
        return elapsed_s
    clock = torch.tensor(elapsed_s, dtype=torch.float64, device=device)
    dist.all_reduce(clock, op=dist.ReduceOp.MAX)
    return float(clock.item())


@contextlib.contextmanager
def signals_caught() -> Iterator[dict[str, Any]]:
    """SIGINT and SIGTERM only set ``stop["signal"]``: the loop finishes its step, saves, exits."""
    stop: dict[str, Any] = {"signal": None}

    def on_signal(signum, frame):
        stop["signal"] = signum

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
