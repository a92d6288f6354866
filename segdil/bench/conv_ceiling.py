"""The convolution ceiling: TFLOP/s of one 3×3 convolution, what one HDC layer can reach at best.

:func:`conv_ceiling` times the convolution alone (``segdil bench --conv-ceiling``);
:func:`ceiling_runner` builds the same forward+backward as a step that ``segdil bench --vs-ceiling``
times in the same rounds as a model's step, so the model's share of the ceiling is measured
under the same load.
"""

from __future__ import annotations

import functools
import statistics
import time
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from segdil.bench.step_runner import StepRunner, hw, sync
from segdil.bench.variants import Variant
from segdil.device import environment, resolve_device
from segdil.errors import SegdilError

DILATIONS = (1, 2, 5)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def check_ceiling_args(channels: int, size: int | tuple[int, int], batch: int, dilations: Sequence[int], steps: int = 1, warmup: int = 0) -> None:
    """One-line errors for values the convolution cannot take."""
    height, width = hw(size)
    for flag, value, low in (("--conv-channels", channels, 1), ("--batch", batch, 1), ("--size", min(height, width), 1), ("--steps", steps, 1), ("--warmup", warmup, 0)):
        if value < low:
            raise SegdilError(f"{flag} {value}: use at least {low}")
    if not dilations or min(dilations) < 1:
        raise SegdilError(f"dilations {list(dilations)}: give dilation rates of at least 1")


def _conv_case(channels: int, size: int | tuple[int, int], batch: int, dilation: int, device: torch.device, dtype: torch.dtype, channels_last: bool):
    """The convolution (padding = dilation), an input that wants its gradient, and an output gradient."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    height, width = hw(size)
    conv = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False).to(device, dtype).to(memory_format=memory_format)
    x = torch.randn(batch, channels, height, width, device=device, dtype=dtype).contiguous(memory_format=memory_format).requires_grad_()
    return conv, x, torch.randn_like(x)


def count_flops(fn: Callable[[], None]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def conv_ceiling(
    channels: int = 64,
    size: int | tuple[int, int] = 512,
    batch: int = 16,
    dilations: Sequence[int] = DILATIONS,
    device: str = "auto",
    dtype: torch.dtype = torch.bfloat16,
    channels_last: bool = True,
    steps: int = 20,
    warmup: int = 5,
) -> dict[str, Any]:
    """TFLOP/s of a single 3×3 ``channels``→``channels`` convolution (padding = dilation), forward
    and forward+backward, in ``dtype`` weights and inputs: what one HDC layer can reach at best.
    ``size``: a side or (height, width)."""
    check_ceiling_args(channels, size, batch, dilations, steps, warmup)
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    rows = []
    for dilation in dilations:
        conv, x, grad = _conv_case(channels, size, batch, dilation, dev, dtype, channels_last)
        for label, fn in (("forward", functools.partial(_conv_forward, conv, x)), ("forward+backward", functools.partial(_conv_forward_backward, conv, x, grad))):
            flops = count_flops(fn)
            for _ in range(warmup):
                fn()
            times = []
            for _ in range(steps):
                sync(dev)
                start = time.perf_counter()
                fn()
                sync(dev)
                times.append(time.perf_counter() - start)
            median = statistics.median(times)
            rows.append({"dilation": dilation, "pass": label, "flops": flops, "ms": round(median * 1e3, 4), "tflops": float(f"{flops / median / 1e12:.4g}")})  # 4 significant digits: tiny sizes stay above 0
    shown_size = size if isinstance(size, int) or size[0] != size[1] else int(size[0])
    return {"channels": channels, "size": shown_size, "batch": batch, "dtype": str(dtype).replace("torch.", ""), "channels_last": channels_last, "steps": steps, **environment(dev), "rows": rows}


def _conv_forward(conv: nn.Conv2d, x: torch.Tensor) -> None:
    with torch.no_grad():
        conv(x)


def _conv_forward_backward(conv: nn.Conv2d, x: torch.Tensor, grad: torch.Tensor) -> None:
    x.grad = conv.weight.grad = None  # fresh gradients: no accumulation kernel in the timing
    conv(x).backward(grad)


def ceiling_runner(channels: int, size: int | tuple[int, int], batch: int, device: torch.device, precision: str, dilations: Sequence[int] = DILATIONS) -> tuple[StepRunner, int]:
    """The conv ceiling as a bench step: forward+backward of the 3×3 convolution at each of
    ``dilations`` in ``precision`` (fp32 or bf16), channels_last; and the FLOPs of that step."""
    check_ceiling_args(channels, size, batch, dilations)
    cases = [_conv_case(channels, size, batch, d, device, DTYPES[precision], True) for d in dilations]

    def step() -> None:
        for conv, x, grad in cases:
            _conv_forward_backward(conv, x, grad)

    def held() -> int:
        return sum(t.numel() * t.element_size() for conv, x, grad in cases for t in (conv.weight, x, grad))

    return StepRunner(Variant(channels_last=True, amp=precision == "bf16"), step, held), count_flops(step)


def ceiling_shares(rows: list[dict[str, Any]], ceilings: dict[str, dict[str, Any]]) -> None:
    """Each variant row's TFLOP/s as a share of the ceiling in its precision (bf16 with amp, else fp32)."""
    for row in rows:
        ceiling = ceilings.get("bf16" if row.get("amp") else "fp32")
        row["ceiling_share"] = round(row["tflops"] / ceiling["tflops"], 4) if row.get("tflops") and ceiling and ceiling["tflops"] else None


def model_width(model_args: dict[str, Any], fallback: int = 64) -> int:
    """The model's first channel count (``width_args`` of its class, given or the constructor's
    default), for ``--vs-ceiling``."""
    import inspect

    from segdil.models import model_class

    cls = model_class(model_args["name"])
    defaults = {name: p.default for name, p in inspect.signature(cls).parameters.items() if p.default is not inspect.Parameter.empty}
    for arg in cls.width_args:
        value = model_args.get(arg, defaults.get(arg))
        value = value[0] if isinstance(value, (list, tuple)) and value else value
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return fallback


def format_conv_table(result: dict[str, Any]) -> str:
    size = result["size"]
    shown = f"{size}x{size}" if isinstance(size, int) else f"{size[1]}x{size[0]}"
    lines = [f"3x3 conv {result['channels']}->{result['channels']} {shown} batch {result['batch']} {result['dtype']}{' channels_last' if result['channels_last'] else ''} on {result['device_name']} ({result['threads']} threads)"]
    lines.append(f"{'dilation':>8} {'pass':<18} {'ms':>9} {'GFLOP/s':>9}")
    for row in result["rows"]:
        lines.append(f"{row['dilation']:>8} {row['pass']:<18} {row['ms']:>9.3f} {row['tflops'] * 1e3:>9.1f}")
    return "\n".join(lines)


def ceiling_from_options(channels: Optional[int], height: int, width: int, batch: int, dev: torch.device, amp: bool, channels_last: bool, steps: Optional[int], warmup: Optional[int], default_steps: tuple[int, int]) -> dict[str, Any]:
    """``segdil bench --conv-ceiling``: bf16 when ``amp`` (``--amp``, or native bf16 by default), else fp32."""
    timed, warm = default_steps
    return conv_ceiling(
        64 if channels is None else channels, (height, width), batch, device=str(dev), dtype=torch.bfloat16 if amp else torch.float32,
        channels_last=channels_last, steps=timed if steps is None else steps, warmup=warm if warmup is None else warmup,
    )
