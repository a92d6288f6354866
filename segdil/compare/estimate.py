"""How long a comparison will take, printed before it starts.

With ``--budget-s`` every run trains for the budget, so the estimate is the budget times the runs
left plus what each run costs around its training (a fresh process, the data, the validation) and
the scoring at the end. With a step count, a probe times a few training steps of every model on
random inputs at the training crop size (as ``segdil bench --train`` does) and multiplies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from segdil.bench.step_runner import build_runner
from segdil.bench.variants import Variant
from segdil.compare.plan import ModelEntry, data_num_classes
from segdil.data.transforms import resolve_crop_size
from segdil.device import resolve_device, train_amp

PROBE_STEPS = 2  # timed steps per model, after one untimed step
RUN_OVERHEAD_S = 8.0  # a fresh process, imports, the data and one validation: measured 5-7 s on a 2-core CPU
SCORING_S_PER_MODEL = 5.0  # overlays, per-image recall and the report, per model (seed 0 only)


@dataclass
class Estimate:
    seconds: float
    runs_left: int
    how: str  # what the figure rests on, for the printed line

    def line(self) -> str:
        from segdil.compare.progress import fmt_duration

        if self.runs_left == 0:
            return "expected time: every run is finished already; only the report is written"
        return f"expected time: about {fmt_duration(self.seconds)} for {self.runs_left} run(s) ({self.how})"


def probe_step_s(entry: ModelEntry) -> float:
    """Median seconds of one training step of ``entry`` on random inputs (batch and crop of its config)."""
    cfg = entry.cfg
    device = resolve_device(cfg.train.device)
    crop = resolve_crop_size(cfg.data)
    variant = Variant(channels_last=cfg.train.channels_last, amp=train_amp(cfg.train.precision, device))
    runner = build_runner({**cfg.model, "num_classes": data_num_classes(cfg)}, variant, "train", crop, cfg.train.batch_size, device)
    runner.step()
    times = []
    for _ in range(PROBE_STEPS):
        start = time.perf_counter()
        runner.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def estimate(entries: list[ModelEntry], runs_left: dict[str, int]) -> Estimate:
    """The expected wall-clock of the runs not yet finished (``runs_left``: label → runs) and the report."""
    total_runs = sum(runs_left.values())
    scoring = SCORING_S_PER_MODEL * len(entries)
    if total_runs == 0:
        return Estimate(scoring, 0, "")
    budget = entries[0].cfg.train.budget_s
    if budget is not None:
        seconds = total_runs * (budget + RUN_OVERHEAD_S) + scoring
        return Estimate(seconds, total_runs, f"{budget:g} s of training each, plus about {RUN_OVERHEAD_S:g} s per run and the report")
    seconds, rates = scoring, []
    for entry in entries:
        if runs_left.get(entry.label, 0) == 0:
            continue
        step_s = probe_step_s(entry)
        seconds += runs_left[entry.label] * (entry.cfg.train.max_steps * step_s + RUN_OVERHEAD_S)
        rates.append(f"{entry.label} {step_s * 1e3:.0f} ms")
    return Estimate(seconds, total_runs, f"{entries[0].cfg.train.max_steps} steps each; a training step measured now: " + ", ".join(rates))
