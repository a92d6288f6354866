"""Train every model × every seed of a comparison.

Each run trains in a fresh Python process (``python -m segdil.compare.execute``, the request on
stdin) so that its peak memory is its own: on CUDA ``torch.cuda.max_memory_allocated``; on the CPU
the rise of the process's peak resident set size during training over its resident size just
before (see :func:`measure_training`). The run writes ``run.json`` beside the usual ``train``
outputs in ``OUT/runs/<label>/seed<k>``; a finished run with the same config is reused, not retrained,
and an interrupted one (Ctrl-C saves its ``last.pt``) continues from its last checkpoint.

Ctrl-C and SIGTERM reach the running child (it finishes its step and saves ``last.pt``; a child whose
comparison dies without a word gets SIGTERM from the kernel), and a run folder whose ``.lock`` a
live process holds is never removed or restarted.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from segdil.atomic import open_log, write_json
from segdil.bench.memory import peak_rss_bytes, reset_peak_rss, rss_bytes
from segdil.checkpoint import load_checkpoint
from segdil.compare.plan import ModelEntry, check_out, mark_out
from segdil.compare.progress import CompareProgress, LogFollower
from segdil.config import Config, config_from_dict, dump_config
from segdil.device import resolve_device
from segdil.errors import SegdilError
from segdil.output_paths import folder_lock, lock_holder
from segdil.train.main import train

# train() result keys that are not validation metrics
RUN_KEYS = ("work_dir", "step", "train_s", "img_per_s")
POLL_S = 0.5  # seconds between looks at a running run's log
STOP_WAIT_S = 60.0  # after Ctrl-C, how long a run may take to finish its step and save last.pt


class Interrupted(SegdilError):
    """Ctrl-C (or SIGTERM) stopped a comparison; the message says what finished and how to continue."""

    exit_code = 130


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt, so that both stop a comparison alike."""


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block SIGTERM raises :class:`Terminated` (in the main thread; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_config(entry: ModelEntry, seed: int) -> Config:
    cfg = copy.deepcopy(entry.cfg)
    cfg.train.seed = seed
    cfg.name = entry.label
    return cfg


def run_dir(out: Path, label: str, seed: int) -> Path:
    return Path(out) / "runs" / label / f"seed{seed}"


def warm_imports(cfg: Config) -> None:
    """Import what ``train()`` imports lazily, so that neither its memory nor its time counts as training."""
    # imports in the function: importing is what it is for (called just before training is measured)
    import segmentation_models_pytorch  # noqa: F401  (the training loss imports it)

    import segdil.data
    import segdil.data.loader
    import segdil.data.transforms
    import segdil.metrics
    import segdil.train.validate  # noqa: F401
    from segdil.models import create_model_quietly

    try:
        from torch.utils import tensorboard  # noqa: F401  (the run logger writes TensorBoard scalars when it can; `import torch.…` here would make `torch` local)
    except ImportError:
        pass
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])  # the first optimizer imports torch._dynamo
    # start autograd's engine and the convolution libraries on a toy layer (their one-time cost is no model's)
    toy = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
    toy(torch.zeros(2, 3, 8, 8)).sum().backward()
    with torch.device("meta"):
        create_model_quietly(**cfg.model)  # smp models import segmentation_models_pytorch


def measure_training(cfg: Config, work_dir: Path, resume: bool = False) -> dict[str, Any]:
    """Train in this process and return the run record (metrics, speed, peak memory, model args);
    ``resume`` continues the run from ``work_dir/last.pt``.

    CPU memory is the rise of the peak resident set size during ``train()`` over the resident size
    just before it, after the modules ``train()`` needs are imported; the peak is reset first where
    Linux allows it, so the imports' own peak does not hide it. DataLoader workers are not counted.
    """
    device = resolve_device(cfg.train.device)
    warm_imports(cfg)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    reset = reset_peak_rss()
    rss_before, peak_before = rss_bytes(), peak_rss_bytes()
    result = train(cfg, work_dir=str(work_dir), resume=resume, quiet=False)
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


def train_isolated(cfg: Config, work_dir: Path, log_path: Path, on_progress: Callable[[dict[str, float] | None], None] | None = None, resume: bool = False) -> dict[str, Any]:
    """Train ``cfg`` in a fresh Python process; its stdout and stderr go to ``log_path`` (appended to
    when ``resume`` continues the run from its last checkpoint).

    While it runs, ``on_progress`` gets the newest progress line of the log (parsed) about twice a second.
    On Ctrl-C the run gets the signal too: it finishes its step and saves ``last.pt`` before this returns.
    """
    request = json.dumps({"config": cfg.to_dict(), "work_dir": str(Path(work_dir).resolve()), "resume": resume, "parent": os.getpid()})
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if not resume:
        log_path.unlink(missing_ok=True)  # one run's log, not the history of earlier attempts
    follower = LogFollower(log_path)
    with open_log(log_path) as log:
        proc = subprocess.Popen([sys.executable, "-m", "segdil.compare.execute"], stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            proc.stdin.write(request)
            proc.stdin.close()
            while True:
                try:
                    proc.wait(timeout=POLL_S)
                    break
                except subprocess.TimeoutExpired:
                    if on_progress is not None:
                        on_progress(follower.poll())
        except KeyboardInterrupt:
            stop_child(proc)
            raise
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if proc.returncode != 0:
        lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
        last = lines[-1].strip() if lines else "no output"
        raise SegdilError(f"{cfg.name} seed {cfg.train.seed}: training failed (exit {proc.returncode}): {last[:300]} — full log: {log_path}")
    return json.loads((Path(work_dir) / "run.json").read_text())


def stop_child(proc: subprocess.Popen) -> None:
    """Let a run that was sent SIGINT save its checkpoint and exit; kill it if it takes too long or
    a second Ctrl-C (or SIGTERM) comes: no child outlives the comparison."""
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # a no-op when Ctrl-C reached the whole process group already
        proc.wait(timeout=STOP_WAIT_S)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        proc.kill()
        proc.wait()


def check_not_held(work_dir: Path) -> None:
    """A run folder whose ``.lock`` a live process holds (e.g. a run left training by a killed comparison)
    is neither removed nor continued."""
    holder = lock_holder(work_dir)
    if holder is not None:
        raise SegdilError(f"{work_dir}: in use by another training process (PID {holder}, lock {work_dir / '.lock'}); wait for it to finish or stop it, then run the same command again")


def run_state(work_dir: Path, cfg: Config) -> str:
    """``new`` (nothing there), ``done`` (finished, same config), ``partial`` (same config, unfinished), or ``other``."""
    if not work_dir.exists():
        return "new"
    saved = work_dir / "config.yaml"
    if not saved.is_file() or saved.read_text() != dump_config(cfg):
        return "other" if any(work_dir.iterdir()) else "new"
    return "done" if (work_dir / "run.json").is_file() else "partial"


def runs_left(entries: list[ModelEntry], seeds: int, out: Path) -> dict[str, int]:
    """How many runs of each model are not finished in ``out`` (label → count)."""
    return {e.label: sum(run_state(run_dir(out, e.label, s), run_config(e, s)) != "done" for s in range(seeds)) for e in entries}


def run_models(entries: list[ModelEntry], seeds: int, out: Path, echo: Callable[[str], None] = print, live: bool | None = None) -> list[dict[str, Any]]:
    """Train every model with seeds 0…seeds-1 (seed by seed); returns one record per run.

    ``out`` must be new, empty or an earlier comparison's (:func:`segdil.compare.plan.check_out`); it is
    marked as compare's and locked while runs train. Ctrl-C or SIGTERM stops the running child after
    its step (it saves ``last.pt``) and raises :class:`Interrupted`, which says what finished.

    Progress (:class:`segdil.compare.progress.CompareProgress`): with ``live`` (default: when standard
    output is a terminal) one line, redrawn, for the whole comparison; otherwise a line when each run
    starts and ends and a progress line at most every 30 s in between.
    """
    out = Path(out)
    check_out(out)
    order = [(entry, seed) for seed in range(seeds) for entry in entries]
    live = sys.stdout.isatty() if live is None else live
    progress = CompareProgress([(e.label, s) for e, s in order], echo=echo, live=live, budget_s=entries[0].cfg.train.budget_s if entries else None)
    records: list[dict[str, Any]] = []
    running: dict[str, Any] = {"run": None}  # (label, seed, work dir) of the run in training
    try:
        with sigterm_interrupts():
            out.mkdir(parents=True, exist_ok=True)
            mark_out(out, entries)
            with folder_lock(out, "--out", "comparison"):
                for entry, seed in order:
                    records.append(_run_one(entry, seed, out, progress, echo, running))
    except KeyboardInterrupt as stop:
        progress.close()
        error = Interrupted(interrupted_message(records, len(order), running["run"], signal_name="SIGTERM" if isinstance(stop, Terminated) else None))
        if isinstance(stop, Terminated):
            error.exit_code = 128 + signal.SIGTERM
        raise error from None
    finally:
        progress.close()
    if live:
        echo(f"runs {len(records)}/{len(order)} done: {out / 'runs'}")
    return records


def _run_one(entry: ModelEntry, seed: int, out: Path, progress: CompareProgress, echo: Callable[[str], None], running: dict[str, Any]) -> dict[str, Any]:
    """One run of the comparison: reused when finished, continued when interrupted, else trained."""
    cfg = run_config(entry, seed)
    work_dir = run_dir(out, entry.label, seed)
    state = run_state(work_dir, cfg)
    if state == "other":
        raise SegdilError(f"{work_dir}: holds a run with a different config; choose another --out or delete that folder")
    if state == "done":
        record = json.loads((work_dir / "run.json").read_text())
        progress.start(entry.label, seed, None)
        progress.finish(entry.label, seed, reused=True, message=f"reused {work_dir}")
    else:
        if work_dir.exists():
            check_not_held(work_dir)
        resume = state == "partial" and (work_dir / "last.pt").is_file()
        if state == "partial" and not resume:
            shutil.rmtree(work_dir)  # an unfinished run of this very config without a checkpoint, no process in it: start it afresh
        log = work_dir.parent / f"seed{seed}.log"
        progress.start(entry.label, seed, log)
        if resume:
            echo(f"{entry.label} seed {seed}: continuing the interrupted run from {work_dir / 'last.pt'}")
        started, running["run"] = time.perf_counter(), (entry.label, seed, work_dir)
        record = train_isolated(cfg, work_dir, log, on_progress=progress.update, resume=resume)
        running["run"] = None
        m = record["metrics"]
        progress.finish(
            entry.label,
            seed,
            message=f"mIoU {_fmt(m.get('mIoU'))}, small-object IoU {_fmt(m.get('small_object_iou'))}, {record['step']} steps, {time.perf_counter() - started:.0f} s",
        )
    record.update(label=entry.label, seed=seed, work_dir=str(work_dir))
    return record


def interrupted_message(records: list[dict[str, Any]], total: int, current: tuple[str, int, Path] | None, signal_name: str | None = None) -> str:
    """What an interrupted comparison finished, and how to continue it (``signal_name``: what stopped it, when not Ctrl-C)."""
    done = ", ".join(f"{r['label']} seed {r['seed']}" for r in records[:12]) + (" …" if len(records) > 12 else "")
    text = f"{f'stopped by {signal_name}' if signal_name else 'interrupted'}: {len(records)} of {total} runs finished ({done or 'none'})"
    if current is not None:
        label, seed, work_dir = current
        saved = work_dir / "last.pt"
        text += f"; {label} seed {seed} " + (f"saved {saved} and will continue from it" if saved.is_file() else "had no checkpoint yet and will start again")
    return text + ". Run the same command again to continue: finished runs are reused."


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"


def die_with_parent(parent: int | None) -> None:
    """Ask the kernel for SIGTERM when the comparison ends (Linux ``PR_SET_PDEATHSIG``), so that a child never
    trains on as an orphan: SIGTERM makes it save ``last.pt`` after its step and exit."""
    try:
        import ctypes  # Linux only; elsewhere the comparison's own signal handling stops the child

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if parent is not None and os.getppid() != parent:  # the comparison ended before the request was read
        raise SystemExit(128 + signal.SIGTERM)


def _child_main() -> None:
    request = json.loads(sys.stdin.read())
    die_with_parent(request.get("parent"))
    cfg = config_from_dict(request["config"])
    work_dir = Path(request["work_dir"])
    try:
        record = measure_training(cfg, work_dir, resume=bool(request.get("resume")))
    except SegdilError as exc:
        print(f"Error: {exc.format_message()}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    write_json(work_dir / "run.json", record, default=_json_default)


if __name__ == "__main__":
    _child_main()
