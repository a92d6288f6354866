"""The training script, top to bottom: config → data → model → loop → checkpoints.

``tools/train.py CONFIG`` and ``segdil train CONFIG`` both run :func:`train`. Under torchrun each
process trains on its shard with DDP; only rank 0 writes.
"""

from __future__ import annotations

import math
import signal
import time
import warnings
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from segdil.atomic import write_json, write_text
from segdil.checkpoint import load_checkpoint, save_checkpoint
from segdil.config import Config, dump_config
from segdil.device import autocast, resolve_device, train_amp
from segdil.errors import SegdilError
from segdil.models import create_model, model_class
from segdil.train.distributed import cleanup_distributed, setup_distributed
from segdil.train.logger import RunLogger
from segdil.train.losses import SegmentationLoss
from segdil.train.optim import build_optimizer, build_scheduler
from segdil.train.sampler import ResumableSampler
from segdil.train.state import resolve_work_dir, rng_state, seed_everything, set_rng_state
from segdil.train.validate import validate


class StopRequested(Exception):
    """Raised inside the loop after SIGINT/SIGTERM, once the current step has finished."""


def train(cfg: Config, work_dir: str | None = None, resume: bool = False, quiet: bool = False) -> dict[str, Any]:
    """Train ``cfg``; returns the last validation metrics. Writes into the run's work dir."""
    from segdil.data import build_datasets
    from segdil.data.loader import build_loader

    tc = cfg.train
    device = resolve_device(tc.device)
    dist_info = setup_distributed(device)
    if device.type == "cuda" and dist_info.enabled:
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    if model_class(cfg.model["name"]).is_classifier:
        raise SegdilError(f"model.name={cfg.model['name']!r} is an image classifier; tools/train.py trains segmentation models")
    amp = train_amp(tc.amp, device)
    torch.backends.cudnn.benchmark = not tc.deterministic
    if tc.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)

    # ---- run folder, resume state
    path = resolve_work_dir(cfg.name, work_dir, resume)
    if dist_info.enabled:  # every rank has checked the folder; now all take rank 0's, before anyone writes
        shared = [str(path)]
        dist.broadcast_object_list(shared, src=0)
        path = type(path)(shared[0])
        dist.barrier()
    ckpt = load_checkpoint(path / "last.pt") if resume else None
    if dist_info.is_main:
        path.mkdir(parents=True, exist_ok=True)
        write_text(path / "config.yaml", dump_config(cfg))
    log = RunLogger(path, enabled=dist_info.is_main and not quiet, total_steps=tc.max_steps)
    log.echo(f"work dir: {path}\n" + dump_config(cfg))

    # ---- data
    seed_everything(tc.seed)
    train_ds, val_ds, class_names = build_datasets(cfg.data, seed=tc.seed)
    num_classes = len(class_names)
    model_args = {**cfg.model, "num_classes": num_classes}
    if cfg.model.get("num_classes", num_classes) != num_classes:
        raise SegdilError(f"model.num_classes={cfg.model['num_classes']} but the data has {num_classes} classes ({', '.join(class_names)}); remove model.num_classes")

    # ---- model, optimizer, schedule
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if not dist_info.is_main else "default")
        model = create_model(**model_args)
    if tc.sync_bn and dist_info.enabled:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    memory_format = torch.channels_last if tc.channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)
    optimizer = build_optimizer(model, tc)
    scheduler = build_scheduler(optimizer, tc)
    criterion = SegmentationLoss(tc.loss, num_classes).to(device)
    step, best, metrics = 0, None, {}
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        step, best, metrics = ckpt["step"], ckpt.get("best"), ckpt.get("metrics", {})
        set_rng_state(ckpt["rng"])
        log.echo(f"resumed from {path / 'last.pt'} at step {step}")
    train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) if dist_info.enabled else model
    if tc.compile:
        train_model = torch.compile(train_model)

    sampler = ResumableSampler(len(train_ds), seed=tc.seed, rank=dist_info.rank, world_size=dist_info.world_size, start=step * tc.batch_size)
    loader = build_loader(train_ds, tc.batch_size, sampler=sampler, num_workers=cfg.data.num_workers, drop_last=True, seed=tc.seed)
    # folder images may differ in size and cannot share a batch unless padded to one size
    val_batch = max(1, tc.batch_size // 2) if cfg.data.root is None else 1
    val_shard = torch.utils.data.Subset(val_ds, range(dist_info.rank, len(val_ds), dist_info.world_size))
    val_loader = build_loader(val_shard, val_batch, num_workers=cfg.data.num_workers, seed=tc.seed)

    def checkpoint_state() -> dict[str, Any]:
        return {
            "model_args": model_args,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": None,  # bf16 autocast needs no loss scaling
            "step": step,
            "data_position": step * tc.batch_size,
            "rng": rng_state(),
            "config": cfg.to_dict(),
            "class_names": list(class_names),
            "class_colors": getattr(train_ds, "class_colors", None),
            "metrics": metrics,
            "best": best,
        }

    def save(name: str) -> None:
        if dist_info.is_main:
            save_checkpoint(checkpoint_state(), path / name)

    # ---- signals: finish the step, save last.pt, exit
    stop = {"signal": None}

    def on_signal(signum, frame):
        stop["signal"] = signum

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    # ---- the loop
    train_model.train()
    started, seen = time.perf_counter(), 0
    batches = iter(loader)
    try:
        while step < tc.max_steps:
            images, masks = next(batches)
            images = images.to(device, non_blocking=True, memory_format=memory_format)
            masks = masks.to(device, non_blocking=True)
            with autocast(device, amp):
                logits = train_model(images)
            loss = criterion(logits, masks)
            if not torch.isfinite(loss):
                raise SegdilError(
                    f"step {step + 1}: the loss is {loss.item()}; stopped. The last good checkpoint is {path / 'last.pt'}. "
                    "Lower train.lr or set train.grad_clip"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            seen += images.shape[0] * dist_info.world_size
            elapsed = time.perf_counter() - started
            log.step(step, loss=loss.item(), lr=scheduler.get_last_lr()[0], img_per_s=seen / max(elapsed, 1e-9), every=tc.log_every)

            budget_over = tc.budget_s is not None and elapsed >= tc.budget_s
            if dist_info.enabled and tc.budget_s is not None:
                flag = torch.tensor(float(budget_over), device=device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                budget_over = bool(flag.item())
            last = step == tc.max_steps or budget_over
            if step % tc.val_every == 0 or last:
                metrics, samples = validate(model, val_loader, num_classes, cfg, device, autocast(device, amp), keep=4 if log.tb else 0)
                model.train()
                log.overlays(step, samples, cfg.data.mean, cfg.data.std, getattr(train_ds, "class_colors", None))
                score = metrics.get(tc.best_metric)
                if score is None and tc.best_metric not in metrics:
                    raise SegdilError(f"train.best_metric={tc.best_metric!r} is not a validation metric; choose one of {', '.join(k for k, v in metrics.items() if isinstance(v, (int, float)))}")
                log.validation(step, metrics, class_names)
                if score is not None and not math.isnan(score) and (best is None or score > best):
                    best = score
                    save("best.pt")
            if step % tc.ckpt_every == 0 or last:
                save("last.pt")
            if stop["signal"] is not None:
                raise StopRequested
            if budget_over:
                log.echo(f"train.budget_s={tc.budget_s} reached at step {step}")
                break
    except StopRequested:
        save("last.pt")
        name = signal.Signals(stop["signal"]).name
        log.echo(f"{name} received: saved {path / 'last.pt'} at step {step}; continue with --resume --work-dir {path}")
        raise SystemExit(128 + stop["signal"]) from None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        log.close()
        cleanup_distributed()
    result = {"work_dir": str(path), "step": step, "train_s": time.perf_counter() - started, "img_per_s": seen / max(time.perf_counter() - started, 1e-9), **metrics}
    if dist_info.is_main:
        write_json(path / "final_metrics.json", result)
    return result
