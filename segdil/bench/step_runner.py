"""One built variant and its timed steps; FLOPs of a step counted on the meta device."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

from segdil.bench.variants import Variant, variant_model_args
from segdil.device import autocast
from segdil.models.footprint import constructor_default


@dataclass
class Measurement:
    """The figures of one variant."""

    variant: Variant
    step_s: list[float] = field(default_factory=list)
    warmup_s: float = 0.0
    peak_memory_mb: Optional[float] = None
    rss_before_mb: Optional[float] = None  # CPU: resident set before the first step

    def summary(self, batch: int, flops_per_step: Optional[int]) -> dict[str, Any]:
        median = statistics.median(self.step_s)
        out: dict[str, Any] = {"name": self.variant.name, **asdict(self.variant)}
        out.update(
            ms_per_step=round(median * 1e3, 3),
            ms_min=round(min(self.step_s) * 1e3, 3),
            ms_max=round(max(self.step_s) * 1e3, 3),
            img_per_s=round(batch / median, 3),
            tflops=round(flops_per_step / median / 1e12, 4) if flops_per_step else None,
            peak_memory_mb=None if self.peak_memory_mb is None else round(self.peak_memory_mb, 1),
            step_memory_mb=None if None in (self.peak_memory_mb, self.rss_before_mb) else round(self.peak_memory_mb - self.rss_before_mb, 1),
            warmup_s=round(self.warmup_s, 2),
        )
        return out


@dataclass
class StepRunner:
    """A built variant: ``step()`` runs one training or inference step on fixed synthetic inputs."""

    variant: Variant
    step: Callable[[], None]
    held: Callable[[], int]  # bytes this variant keeps between steps


def hw(size: int | tuple[int, int]) -> tuple[int, int]:
    """``512`` -> (512, 512); ``(height, width)`` as it is."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def build_runner(model_args: dict[str, Any], variant: Variant, mode: str, size: int | tuple[int, int], batch: int, device: torch.device, compile_backend: str = "inductor", seed: int = 0) -> StepRunner:
    """Build the model of ``variant`` and a closure that runs one step of ``mode`` on random inputs
    of ``size`` (a side, or (height, width))."""
    from segdil.models import create_model_quietly, model_class

    args = variant_model_args(model_args, variant)
    name = args["name"]
    in_channels = int(args.get("in_channels", constructor_default(name, "in_channels", 3)))
    num_classes = int(args.get("num_classes", constructor_default(name, "num_classes", 4)))
    torch.manual_seed(seed)
    model = create_model_quietly(**args).to(device)
    if mode == "infer":
        model.eval()
        if variant.fuse:
            from segdil.inference.fuse import fold_batchnorm

            model = fold_batchnorm(model)
    else:
        model.train()
    memory_format = torch.channels_last if variant.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    height, width = hw(size)
    x = torch.randn(batch, in_channels, height, width, device=device).contiguous(memory_format=memory_format)
    target_shape = (batch,) if model_class(name).is_classifier else (batch, height, width)
    target = torch.randint(0, num_classes, target_shape, device=device)
    forward = torch.compile(model, backend=compile_backend) if variant.compile else model

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4) if mode == "train" else None

    def train_step() -> None:
        with autocast(device, variant.amp):
            out = forward(x)
        loss = F.cross_entropy(out.float(), target, ignore_index=255)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)  # no gradients held between steps

    def infer_step() -> None:
        with torch.inference_mode(), autocast(device, variant.amp):
            forward(x)

    def held() -> int:
        tensors = [*model.parameters(), *model.buffers(), x, target]
        if optimizer is not None:
            tensors += [v for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v)]
        return sum(t.numel() * t.element_size() for t in tensors)

    return StepRunner(variant, train_step if mode == "train" else infer_step, held)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_step(runner: StepRunner, device: torch.device, measurement: Measurement) -> None:
    if device.type == "cuda":
        sync(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    runner.step()
    sync(device)
    measurement.step_s.append(time.perf_counter() - start)
    if device.type == "cuda":
        own = torch.cuda.max_memory_allocated(device) - before + runner.held()
        measurement.peak_memory_mb = max(measurement.peak_memory_mb or 0.0, own / 2**20)


def warm_up(runner: StepRunner, device: torch.device, warmup: int, measurement: Measurement) -> None:
    start = time.perf_counter()
    for _ in range(max(warmup, 1)):  # at least one: compilation and allocator growth stay out of the timing
        runner.step()
    sync(device)
    measurement.warmup_s = time.perf_counter() - start


def count_step_flops(model_args: dict[str, Any], mode: str, size: int | tuple[int, int], batch: int) -> Optional[int]:
    """FLOPs of one step of the plain model (memory saver off) from ``FlopCounterMode``.

    Counted on the meta device, so nothing is computed; None when the model cannot run there.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from segdil.models import create_model_quietly, model_class

    args = dict(model_args)
    name = args["name"]
    if model_class(name).supports_memory_saver:
        args["memory_saver"] = "none"
    in_channels = int(args.get("in_channels", constructor_default(name, "in_channels", 3)))
    try:
        with torch.device("meta"):
            model = create_model_quietly(**args)
            height, width = hw(size)
            x = torch.empty(batch, in_channels, height, width)
            target = torch.zeros((batch,) if model_class(name).is_classifier else (batch, height, width), dtype=torch.long)
        if mode == "infer":
            model.eval()
        with FlopCounterMode(display=False) as counter:
            if mode == "infer":
                with torch.no_grad():
                    model(x)
            else:
                F.cross_entropy(model(x), target).backward()
        return int(counter.get_total_flops())
    except Exception:  # a model with an operator the meta device lacks: report no FLOPs rather than guess
        return None

