"""Speed and memory of one training or inference step: alone, or as a matrix of optimisations.

A *variant* is a set of switches on top of the naive form (fp32, NCHW, eager, unfused):
``channels_last``, ``amp`` (bf16 autocast), ``compile`` (``torch.compile``), ``fuse`` (BatchNorm
folded into the convolutions, inference only) and ``memory_saver`` (HDC activation checkpointing).

Timing: ``warmup`` untimed steps, then ``steps`` timed ones (``torch.cuda.synchronize`` around each
on CUDA); the figure is the median. A matrix builds every variant in one process and times them in
rounds (one step of each variant per round), so load from other processes falls on all variants
alike and the ratios to the naive baseline stay comparable on a shared machine.

Memory: on CUDA the peak of ``torch.cuda.max_memory_allocated`` during a step, less what other
variants hold, plus this variant's own parameters, buffers, optimizer state and inputs. On CPU the
peak resident set size (``VmHWM``), which is process-wide; a matrix therefore measures each
variant's memory in a fresh subprocess.

FLOPs come from ``torch.utils.flop_counter`` on the meta device: forward for inference, forward and
backward for training, always for the plain model (activation recomputation is not counted).
"""

from __future__ import annotations

import datetime
import functools
import inspect
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segdil.atomic import atomic_write
from segdil.errors import SegdilError
from segdil.inference import resolve_device

MODES = ("train", "infer")
FLAGS = ("channels_last", "amp", "compile", "fuse", "memory_saver")
TRAIN_MATRIX = (
    "naive",
    "channels_last",
    "amp",
    "channels_last+amp",
    "channels_last+amp+compile",
    "channels_last+amp+memory_saver",
    "channels_last+amp+compile+memory_saver",
)
INFER_MATRIX = (
    "naive",
    "channels_last",
    "amp",
    "fuse",
    "channels_last+amp",
    "channels_last+amp+fuse",
    "channels_last+amp+fuse+compile",
)


@dataclass(frozen=True)
class Variant:
    """Which optimisations are on; the name joins them with ``+`` (``naive`` when none is)."""

    channels_last: bool = False
    amp: bool = False
    compile: bool = False
    fuse: bool = False
    memory_saver: bool = False

    @property
    def name(self) -> str:
        return "+".join(flag for flag in FLAGS if getattr(self, flag)) or "naive"

    @classmethod
    def parse(cls, name: str) -> "Variant":
        """``"channels_last+amp"`` -> ``Variant(channels_last=True, amp=True)``."""
        name = name.strip()
        if name == "naive":
            return cls()
        parts = [p.strip() for p in name.split("+")]
        unknown = [p for p in parts if p not in FLAGS]
        if unknown or not parts:
            raise SegdilError(f"variant {name!r}: unknown switch {', '.join(unknown) or '(empty)'}; join naive or {', '.join(FLAGS)} with '+'")
        return cls(**{p: True for p in parts})


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


# --------------------------------------------------------------------------- environment


def default_amp(device: torch.device) -> bool:
    """bf16 autocast where the hardware computes bf16 natively: CUDA with bf16, CPUs with AVX512-BF16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        native = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        return any(check() for check in native if check is not None)
    return False


def environment(device: torch.device) -> dict[str, Any]:
    """What the figures depend on besides the model: device, library versions, backend switches."""
    env: dict[str, Any] = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "date": datetime.date.today().isoformat(),
    }
    if device.type == "cuda":
        env.update(cudnn_benchmark=torch.backends.cudnn.benchmark, cudnn_allow_tf32=torch.backends.cudnn.allow_tf32, cuda=torch.version.cuda)
    else:
        env.update(mkldnn=torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled, cpu_capability=torch.backends.cpu.get_cpu_capability(), cpu_native_bf16=default_amp(device))
    return env


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cpus)"
    except OSError:
        pass
    return f"cpu ({os.cpu_count()} cpus)"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_rss_mb() -> float:
    """This process's peak resident set: ``VmHWM`` where /proc has it (``ru_maxrss`` would include
    the parent's resident set at fork time), else ``getrusage``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# --------------------------------------------------------------------------- models and steps


def _constructor_default(name: str, arg: str, fallback: int) -> int:
    from segdil.models import MODELS

    param = inspect.signature(MODELS[name]).parameters.get(arg)
    return fallback if param is None or param.default is inspect.Parameter.empty else int(param.default)


def variant_model_args(model_args: dict[str, Any], variant: Variant) -> dict[str, Any]:
    """The ``create_model`` kwargs of a variant: the memory saver is a model argument."""
    args = dict(model_args)
    if variant.memory_saver:
        from segdil.models import MODELS, model_class

        if not model_class(args.get("name")).supports_memory_saver:
            with_saver = ", ".join(n for n, cls in MODELS.items() if cls.supports_memory_saver)
            raise SegdilError(f"--memory-saver: model {args.get('name')!r} has no memory saver; only {with_saver} have one (activation checkpointing)")
        args["memory_saver"] = "checkpoint"
    return args


@dataclass
class StepRunner:
    """A built variant: ``step()`` runs one training or inference step on fixed synthetic inputs."""

    variant: Variant
    step: Callable[[], None]
    held: Callable[[], int]  # bytes this variant keeps between steps


def build_runner(model_args: dict[str, Any], variant: Variant, mode: str, size: int, batch: int, device: torch.device, compile_backend: str = "inductor", seed: int = 0) -> StepRunner:
    """Build the model of ``variant`` and a closure that runs one step of ``mode`` on random inputs."""
    from segdil.models import create_model, model_class

    if mode not in MODES:
        raise SegdilError(f"mode {mode!r}: use train or infer")
    if variant.fuse and mode == "train":
        raise SegdilError("--fuse: BatchNorm folding is for inference only; use --infer or --no-fuse")
    args = variant_model_args(model_args, variant)
    name = args["name"]
    in_channels = int(args.get("in_channels", _constructor_default(name, "in_channels", 3)))
    num_classes = int(args.get("num_classes", _constructor_default(name, "num_classes", 4)))
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_model(**args)
    model = model.to(device)
    if mode == "infer":
        model.eval()
        if variant.fuse:
            from segdil.fuse import fold_batchnorm

            model = fold_batchnorm(model)
    else:
        model.train()
    memory_format = torch.channels_last if variant.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    x = torch.randn(batch, in_channels, size, size, device=device).contiguous(memory_format=memory_format)
    target_shape = (batch,) if model_class(name).is_classifier else (batch, size, size)
    target = torch.randint(0, num_classes, target_shape, device=device)
    forward = torch.compile(model, backend=compile_backend) if variant.compile else model

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=variant.amp)

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4) if mode == "train" else None

    def train_step() -> None:
        with autocast():
            out = forward(x)
        loss = F.cross_entropy(out.float(), target, ignore_index=255)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)  # no gradients held between steps

    def infer_step() -> None:
        with torch.inference_mode(), autocast():
            forward(x)

    def held() -> int:
        tensors = [*model.parameters(), *model.buffers(), x, target]
        if optimizer is not None:
            tensors += [v for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v)]
        return sum(t.numel() * t.element_size() for t in tensors)

    return StepRunner(variant, train_step if mode == "train" else infer_step, held)


def _timed_step(runner: StepRunner, device: torch.device, measurement: Measurement) -> None:
    if device.type == "cuda":
        _sync(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    runner.step()
    _sync(device)
    measurement.step_s.append(time.perf_counter() - start)
    if device.type == "cuda":
        own = torch.cuda.max_memory_allocated(device) - before + runner.held()
        measurement.peak_memory_mb = max(measurement.peak_memory_mb or 0.0, own / 2**20)


def _warm_up(runner: StepRunner, device: torch.device, warmup: int, measurement: Measurement) -> None:
    start = time.perf_counter()
    for _ in range(max(warmup, 1)):  # at least one: compilation and allocator growth stay out of the timing
        runner.step()
    _sync(device)
    measurement.warmup_s = time.perf_counter() - start


def count_step_flops(model_args: dict[str, Any], mode: str, size: int, batch: int) -> Optional[int]:
    """FLOPs of one step of the plain model (memory saver off) from ``FlopCounterMode``.

    Counted on the meta device, so nothing is computed; None when the model cannot run there.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from segdil.models import create_model, model_class

    args = dict(model_args)
    name = args["name"]
    if model_class(name).supports_memory_saver:
        args["memory_saver"] = "none"
    in_channels = int(args.get("in_channels", _constructor_default(name, "in_channels", 3)))
    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            model = create_model(**args)
            x = torch.empty(batch, in_channels, size, size)
            target = torch.zeros((batch,) if model_class(name).is_classifier else (batch, size, size), dtype=torch.long)
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


# --------------------------------------------------------------------------- data


def bench_loader(data_cfg: Any, size: int, batch: int, batches: int = 8, seed: int = 0) -> dict[str, Any]:
    """Images per second the training data pipeline delivers: synthetic images of ``size`` generated
    on the fly, augmented by the training transform with ``crop_size = size``, batched by the loader
    with ``data_cfg.num_workers`` workers. The first batch (worker start-up) is not timed."""
    from segdil.data.loader import build_loader
    from segdil.data.synth import SyntheticSegmentation
    from segdil.data.transforms import build_train_transform

    synth = data_cfg.synth
    largest = min(synth.max_object, 0.7 * size)
    synth = replace(synth, size=size, max_object=largest, min_object=min(synth.min_object, largest), n_train=max(synth.n_train, batch * (batches + 1)))
    cfg = replace(data_cfg, synth=synth, crop_size=size)
    dataset = SyntheticSegmentation("train", synth, build_train_transform(cfg), mean=cfg.mean, std=cfg.std)
    loader = build_loader(dataset, batch, shuffle=True, num_workers=cfg.num_workers, drop_last=True, seed=seed)
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    elapsed = time.perf_counter() - start
    del iterator
    return {"img_per_s": round(batch * batches / elapsed, 2), "batches": batches, "num_workers": cfg.num_workers, "source": "synthetic"}


# --------------------------------------------------------------------------- runs


def bench(
    model_args: dict[str, Any],
    *,
    mode: str = "train",
    size: int = 512,
    batch: int = 16,
    device: str = "auto",
    variants: Sequence[Variant | str] = (),
    steps: Optional[int] = None,
    warmup: Optional[int] = None,
    compile_backend: str = "inductor",
    isolate_memory: bool = True,
    data_cfg: Any = None,
    data_batches: int = 8,
    threads: Optional[int] = None,
) -> dict[str, Any]:
    """Measure each of ``variants`` on ``model_args`` (``create_model`` kwargs, ``name`` included).

    With more than one variant the first is the baseline and every entry gets ``speedup`` =
    baseline median ms per step / its median (and ``speedup_best``, the same for the fastest steps). ``steps``/``warmup`` default to 20/5 on CUDA, 5/2 on
    CPU. ``isolate_memory`` measures CPU memory of each variant of a matrix in a fresh subprocess.
    ``data_cfg`` (a ``DataConfig``) also measures the data loader. Returns a JSON-ready dict.
    """
    if size < 1 or batch < 1:
        raise SegdilError(f"--size {size} --batch {batch}: both must be at least 1")
    if threads is not None:
        if threads < 1:
            raise SegdilError(f"--threads {threads}: use at least 1")
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    steps = steps if steps is not None else (20 if dev.type == "cuda" else 5)
    warmup = warmup if warmup is not None else (5 if dev.type == "cuda" else 2)
    if steps < 1 or warmup < 0:
        raise SegdilError(f"--steps {steps} --warmup {warmup}: need at least one step and no negative warm-up")
    chosen = [v if isinstance(v, Variant) else Variant.parse(v) for v in variants] or [Variant()]
    if len({v.name for v in chosen}) != len(chosen):
        raise SegdilError(f"variants {', '.join(v.name for v in chosen)}: each variant may appear once")
    for v in chosen:
        variant_model_args(model_args, v)
        if v.fuse and mode == "train":
            raise SegdilError(f"variant {v.name}: BatchNorm folding is for inference only; use --infer")
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels

    result: dict[str, Any] = {"model": dict(model_args), "mode": mode, "size": size, "batch": batch, "steps": steps, "warmup": warmup, **environment(dev)}
    result["data"] = bench_loader(data_cfg, size, batch, data_batches) if data_cfg is not None else None
    flops = count_step_flops(model_args, mode, size, batch)
    result["flops_per_step"] = flops
    result["gflops_per_image"] = round(flops / batch / 1e9, 3) if flops else None

    runners = [build_runner(model_args, v, mode, size, batch, dev, compile_backend) for v in chosen]
    measurements = [Measurement(v) for v in chosen]
    start_rss = _current_rss_mb() if dev.type == "cpu" else None
    for runner, measurement in zip(runners, measurements):
        _warm_up(runner, dev, warmup, measurement)
    for _ in range(steps):  # rounds: one step of every variant each
        for runner, measurement in zip(runners, measurements):
            _timed_step(runner, dev, measurement)

    if dev.type == "cuda":
        result["memory_method"] = "torch.cuda.max_memory_allocated during a step, less other variants' tensors, plus own weights, optimizer state and inputs"
    elif len(chosen) == 1:
        measurements[0].peak_memory_mb, measurements[0].rss_before_mb = _peak_rss_mb(), start_rss
        result["memory_method"] = "peak resident set size of this process (VmHWM); step_memory_mb: above the resident set before the first step"
    elif isolate_memory:
        for measurement in measurements:
            probe = _memory_in_subprocess(model_args, measurement.variant, mode, size, batch, compile_backend, torch.get_num_threads())
            measurement.peak_memory_mb, measurement.rss_before_mb = probe.get("peak_rss_mb"), probe.get("rss_before_mb")
        result["memory_method"] = "peak resident set size of a fresh process running two steps of the variant alone (VmHWM); step_memory_mb: above its resident set before the first step"
    else:
        result["memory_method"] = "not measured per variant: CPU peak RSS is process-wide (see process_peak_rss_mb)"
    if dev.type == "cpu":
        result["process_peak_rss_mb"] = round(_peak_rss_mb(), 1)

    rows = [m.summary(batch, flops) for m in measurements]
    if len(rows) > 1:
        base, base_best = rows[0]["ms_per_step"], rows[0]["ms_min"]
        for row in rows:
            row["speedup"] = round(base / row["ms_per_step"], 3)
            row["speedup_best"] = round(base_best / row["ms_min"], 3)  # fastest steps: less exposed to other load
    result["variants"] = rows
    return result


def matrix_variants(mode: str, model_name: str) -> list[str]:
    """The default matrix: the naive baseline, each optimisation alone, then combined (the memory
    saver only where the model family has one)."""
    from segdil.models import model_class

    names = TRAIN_MATRIX if mode == "train" else INFER_MATRIX
    return [n for n in names if model_class(model_name).supports_memory_saver or "memory_saver" not in n]


def memory_probe(model_args: dict[str, Any], variant: Variant, mode: str, size: int, batch: int, compile_backend: str) -> dict[str, float]:
    """Run two steps of ``variant`` in this process and report its peak RSS (call in a fresh process)."""
    dev = torch.device("cpu")
    runner = build_runner(model_args, variant, mode, size, batch, dev, compile_backend)
    before = _current_rss_mb()
    runner.step()
    runner.step()
    return {"peak_rss_mb": _peak_rss_mb(), "rss_before_mb": before}


def _memory_in_subprocess(model_args: dict[str, Any], variant: Variant, mode: str, size: int, batch: int, compile_backend: str, threads: int) -> dict[str, float]:
    request = json.dumps({"model_args": model_args, "variant": asdict(variant), "mode": mode, "size": size, "batch": batch, "compile_backend": compile_backend})
    code = "import json,sys; from segdil.bench import _probe_main; _probe_main(sys.argv[1])"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run([sys.executable, "-c", code, request], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        warnings.warn(f"memory probe of {variant.name} failed: {proc.stderr.strip().splitlines()[-1:]}")
        return {}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _probe_main(request: str) -> None:
    args = json.loads(request)
    variant = Variant(**{f.name: args["variant"][f.name] for f in fields(Variant)})
    print(json.dumps(memory_probe(args["model_args"], variant, args["mode"], args["size"], args["batch"], args["compile_backend"])))


# --------------------------------------------------------------------------- the convolution ceiling


def conv_ceiling(
    channels: int = 64,
    size: int = 512,
    batch: int = 16,
    dilations: Sequence[int] = (1, 2, 5),
    device: str = "auto",
    dtype: torch.dtype = torch.bfloat16,
    channels_last: bool = True,
    steps: int = 20,
    warmup: int = 5,
) -> dict[str, Any]:
    """TFLOP/s of a single 3×3 ``channels``→``channels`` convolution (padding = dilation), forward
    and forward+backward, in ``dtype`` weights and inputs: what one HDC layer can reach at best."""
    from torch.utils.flop_counter import FlopCounterMode

    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    rows = []
    for dilation in dilations:
        conv = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False).to(dev, dtype).to(memory_format=memory_format)
        x = torch.randn(batch, channels, size, size, device=dev, dtype=dtype).contiguous(memory_format=memory_format).requires_grad_()
        grad = torch.randn_like(x)
        for label, fn in (("forward", functools.partial(_conv_forward, conv, x)), ("forward+backward", functools.partial(_conv_forward_backward, conv, x, grad))):
            with FlopCounterMode(display=False) as counter:
                fn()
            flops = counter.get_total_flops()
            for _ in range(warmup):
                fn()
            times = []
            for _ in range(steps):
                _sync(dev)
                start = time.perf_counter()
                fn()
                _sync(dev)
                times.append(time.perf_counter() - start)
            median = statistics.median(times)
            rows.append({"dilation": dilation, "pass": label, "flops": int(flops), "ms": round(median * 1e3, 4), "tflops": round(flops / median / 1e12, 6)})
    return {"channels": channels, "size": size, "batch": batch, "dtype": str(dtype).replace("torch.", ""), "channels_last": channels_last, "steps": steps, **environment(dev), "rows": rows}


def _conv_forward(conv: nn.Conv2d, x: torch.Tensor) -> None:
    with torch.no_grad():
        conv(x)


def _conv_forward_backward(conv: nn.Conv2d, x: torch.Tensor, grad: torch.Tensor) -> None:
    x.grad = conv.weight.grad = None  # fresh gradients: no accumulation kernel in the timing
    conv(x).backward(grad)


# --------------------------------------------------------------------------- output


def format_table(result: dict[str, Any]) -> str:
    """The variants of a ``bench`` result as a fixed-width table, baseline ratios included."""
    head = f"{result['model'].get('name')} {result['mode']} {result['size']}x{result['size']} batch {result['batch']} on {result['device_name']} ({result['device']}, {result['threads']} threads, torch {result['torch']})"
    lines = [head]
    if result.get("gflops_per_image"):
        lines.append(f"{result['gflops_per_image']:.2f} GFLOP per image per step")
    lines.append(f"{'variant':<40} {'ms/step':>9} {'img/s':>9} {'TFLOP/s':>8} {'peak MB':>9} {'step MB':>8} {'speedup':>8} {'best':>6} {'warm-up s':>9}")
    for row in result["variants"]:
        tflops = f"{row['tflops']:.3f}" if row["tflops"] is not None else "-"
        memory = f"{row['peak_memory_mb']:.0f}" if row["peak_memory_mb"] is not None else "-"
        step_memory = f"{row['step_memory_mb']:.0f}" if row["step_memory_mb"] is not None else "-"
        speedup = f"{row['speedup']:.2f}x" if "speedup" in row else ""
        best = f"{row['speedup_best']:.2f}x" if "speedup_best" in row else ""
        lines.append(f"{row['name']:<40} {row['ms_per_step']:>9.1f} {row['img_per_s']:>9.2f} {tflops:>8} {memory:>9} {step_memory:>8} {speedup:>8} {best:>6} {row['warmup_s']:>9.1f}")
    if result.get("data"):
        lines.append(f"data loader: {result['data']['img_per_s']:.1f} img/s ({result['data']['num_workers']} workers, {result['data']['source']})")
    lines.append(f"memory: {result['memory_method']}")
    return "\n".join(lines)


def format_conv_table(result: dict[str, Any]) -> str:
    lines = [f"3x3 conv {result['channels']}->{result['channels']} {result['size']}x{result['size']} batch {result['batch']} {result['dtype']}{' channels_last' if result['channels_last'] else ''} on {result['device_name']}"]
    lines.append(f"{'dilation':>8} {'pass':<18} {'ms':>9} {'TFLOP/s':>9}")
    for row in result["rows"]:
        lines.append(f"{row['dilation']:>8} {row['pass']:<18} {row['ms']:>9.3f} {row['tflops']:>9.2f}")
    return "\n".join(lines)


def write_json(obj: Any, path: str) -> None:
    """Write ``obj`` as JSON atomically: a crash leaves no half-written file."""
    with atomic_write(path, "w") as f:
        f.write(json.dumps(obj, indent=2) + "\n")
