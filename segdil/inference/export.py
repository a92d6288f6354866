"""ONNX export of a checkpoint, checked against PyTorch with onnxruntime.

The graph has one input ``image`` (N x 3 x H x W, normalised like in training) and one output
``logits`` (N x C x H x W). With ``dynamic`` the batch, height and width are free. Models that
pad their input to a multiple of their stride decide inside ``forward`` whether to pad, which an
exporter records for the example size only; for those the exported graph pads unconditionally
(by ``(-size) % multiple``, often 0) before the model and crops after it, so every size works.

The TorchScript exporter is tried first; where it fails (or is gone) the ``torch.export``-based
exporter is used with symbolic height and width.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from segdil.atomic import atomic_path
from segdil.checkpoint import load_checkpoint, model_from_checkpoint
from segdil.errors import SegdilError
from segdil.inference.fuse import fold_batchnorm
from segdil.memory_guard import check_fits
from segdil.models.footprint import estimate_step_bytes
from segdil.output_paths import check_output

INPUT_NAME, OUTPUT_NAME = "image", "logits"
DEFAULT_OPSET = 17


class PadToMultiple(nn.Module):
    """Pad H and W (bottom/right, zeros) up to a multiple, run ``model``, crop back."""

    def __init__(self, model: nn.Module, multiple: int):
        super().__init__()
        self.model, self.multiple = model, multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = F.pad(x, (0, (-width) % self.multiple, 0, (-height) % self.multiple))
        return self.model(x)[..., :height, :width]


def export_onnx(model: nn.Module, path: str | Path, *, height: int = 256, width: int = 256, dynamic: bool = False, opset: int = DEFAULT_OPSET) -> None:
    """Write ``model`` (in eval mode, on the CPU) to ``path`` as ONNX; see the module docstring."""
    if opset < 17:
        raise SegdilError(f"opset {opset}: segdil exports opset 17 or newer")
    model = model.cpu().eval()
    multiple = model.input_multiple
    graph = PadToMultiple(model, multiple).eval() if dynamic and multiple > 1 else model
    in_channels = _in_channels(model)
    example = torch.randn(1, in_channels, height, width)
    with torch.no_grad():
        out_dims = model(example).ndim
    spatial = {0: "batch", 2: "height", 3: "width"}
    axes = {INPUT_NAME: spatial, OUTPUT_NAME: spatial if out_dims == 4 else {0: "batch"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                graph, (example,), str(path), dynamo=False, opset_version=opset,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_axes=axes,
            )
            return
        except Exception as exc:  # the TorchScript exporter failed or is unavailable
            first_error = exc
        try:
            shapes = None
            if dynamic:
                from torch.export import Dim

                shapes = ({0: Dim("batch", min=1, max=4096), 2: Dim("height", min=1, max=65536), 3: Dim("width", min=1, max=65536)},)
            program = torch.onnx.export(
                graph, (example,), dynamo=True, opset_version=opset, verbose=False,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_shapes=shapes,
            )
            program.save(str(path), external_data=False)
        except Exception as exc:
            raise SegdilError(
                f"{path}: ONNX export failed ({_first_line(first_error)}; then with dynamo=True: {_first_line(exc)}); "
                "try another --opset or export without --dynamic"
            ) from None


def check_onnx(reference: nn.Module, path: str | Path, shapes: list[tuple[int, int, int, int]], seed: int = 0) -> list[tuple[tuple[int, ...], float]]:
    """Run the ONNX file with onnxruntime on random inputs of ``shapes``; the max abs difference
    to ``reference`` (PyTorch, eval mode, CPU) for each shape."""
    ort = _require("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    reference = reference.cpu().eval()
    generator = torch.Generator().manual_seed(seed)
    results = []
    for shape in shapes:
        x = torch.randn(*shape, generator=generator)
        with torch.no_grad():
            expected = reference(x).float().numpy()
        got = session.run(None, {INPUT_NAME: x.numpy()})[0]
        if got.shape != expected.shape:
            raise SegdilError(f"{path}: onnxruntime returned shape {got.shape} for input {tuple(shape)}, PyTorch {expected.shape}")
        results.append((tuple(shape), float(abs(got - expected).max())))
    return results


def check_shapes(in_channels: int, height: int, width: int, dynamic: bool) -> list[tuple[int, int, int, int]]:
    """The export size, and with ``dynamic`` a second batch size and a size that is a multiple of nothing."""
    shapes = [(1, in_channels, height, width)]
    if dynamic:
        shapes.append((2, in_channels, height + 5, width + 11))
    return shapes


def export_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    *,
    dynamic: bool = False,
    fuse: bool = False,
    opset: int = DEFAULT_OPSET,
    height: int = 256,
    width: int = 256,
    atol: float = 1e-4,
    overwrite: bool = False,
) -> list[tuple[tuple[int, ...], float]]:
    """Export a checkpoint to ``out`` and check it; the file appears only when the check passes.

    Returns ``(input shape, max abs difference)`` per checked shape. The reference is the
    checkpoint's model without folding, so ``fuse`` is checked too. ``out`` is never the
    checkpoint, and an existing ``out`` is replaced only with ``overwrite``.
    """
    _require("onnx")
    _require("onnxruntime")
    out = Path(out)
    if out.is_dir():
        raise SegdilError(f"{out}: --onnx names a folder; give a file name such as model.onnx")
    check_output(out, "--onnx", [checkpoint], overwrite)
    ckpt = load_checkpoint(checkpoint)
    reference = model_from_checkpoint(ckpt, "cpu")
    needed = estimate_step_bytes(ckpt["model_args"], "infer", (height, width), 1)
    if needed is not None:  # the exporter traces one forward, onnxruntime runs it again beside PyTorch's reference
        check_fits(3 * needed, f"--height {height} --width {width}", "export at a smaller example size (with --dynamic the model still takes any size)")
    model = fold_batchnorm(reference) if fuse else reference
    with atomic_path(out) as tmp:
        export_onnx(model, tmp, height=height, width=width, dynamic=dynamic, opset=opset)
        import onnx

        onnx.checker.check_model(str(tmp))
        results = check_onnx(reference, tmp, check_shapes(_in_channels(reference), height, width, dynamic))
        worst = max(diff for _, diff in results)
        if not worst <= atol:
            raise SegdilError(f"{out}: onnxruntime output differs from PyTorch by {worst:.3g} (> {atol:g}); the file was not written")
    return results


def _in_channels(model: nn.Module) -> int:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return 3


def _require(name: str):
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        raise SegdilError(f"{name} is not installed; ONNX export needs the export extra: pip install 'segdil[export]'") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
