"""The convolution ceiling: TFLOP/s of one 3×3 convolution, what one HDC layer can reach at best."""

from __future__ import annotations

import functools
import statistics
import time
from typing import Any, Sequence

import torch
from torch import nn

from segdil.bench.steps import sync
from segdil.device import environment, resolve_device


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
                sync(dev)
                start = time.perf_counter()
                fn()
                sync(dev)
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
