import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from segdil.checkpoint import model_from_checkpoint
from segdil.cli import cli


def run(*args):
    return CliRunner().invoke(cli, ["export", *map(str, args)], catch_exceptions=False)


def printed_diffs(output: str) -> dict[str, float]:
    return {shape: float(diff) for shape, diff in re.findall(r"onnxruntime check (\S+): max abs diff (\S+)", output)}


def onnxruntime_diff(ckpt: Path, path: Path, shape: tuple[int, ...]) -> float:
    model = model_from_checkpoint(ckpt)
    x = torch.randn(*shape)
    with torch.no_grad():
        expected = model(x).numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})[0]
    assert got.shape == expected.shape
    return float(np.abs(got - expected).max())


@pytest.mark.parametrize("name", ["hdc", "fcn"])
@pytest.mark.parametrize("fuse", [False, True])
def test_dynamic_export_matches_pytorch_at_any_size(tmp_path, name, fuse, tiny_checkpoint):
    ckpt = tiny_checkpoint(name)
    out = tmp_path / f"{name}.onnx"
    result = run(ckpt, "--onnx", out, "--dynamic", "--height", 48, "--width", 64, *(["--fuse"] if fuse else []))
    assert result.exit_code == 0, result.output
    diffs = printed_diffs(result.output)
    assert set(diffs) == {"1x3x48x64", "2x3x53x75"}
    assert all(d <= 1e-4 for d in diffs.values())
    graph = onnx.load(out)
    assert graph.opset_import[0].version >= 17
    dims = [d.dim_param or d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    # sizes that are not multiples of the pooling stride
    for shape in [(1, 3, 37, 53), (3, 3, 64, 24)]:
        assert onnxruntime_diff(ckpt, out, shape) <= 1e-4


def test_static_export_has_fixed_shape(tmp_path, tiny_checkpoint):
    ckpt = tiny_checkpoint("hdc")
    out = tmp_path / "static.onnx"
    result = run(ckpt, "--onnx", out, "--height", 40, "--width", 24, "--opset", 18)
    assert result.exit_code == 0, result.output
    assert list(printed_diffs(result.output)) == ["1x3x40x24"]
    graph = onnx.load(out)
    assert graph.opset_import[0].version == 18
    assert [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 40, 24]


@pytest.mark.slow
def test_falls_back_to_the_dynamo_exporter(tmp_path, monkeypatch, tiny_checkpoint):
    real_export = torch.onnx.export
    calls = []

    def export(*args, dynamo=True, **kwargs):
        calls.append(dynamo)
        if not dynamo:
            raise RuntimeError("TorchScript exporter unavailable")
        return real_export(*args, dynamo=dynamo, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", export)
    ckpt = tiny_checkpoint("fcn")
    out = tmp_path / "fcn.onnx"
    result = run(ckpt, "--onnx", out, "--dynamic", "--height", 32, "--width", 32)
    assert result.exit_code == 0, result.output
    assert calls == [False, True]
    assert all(d <= 1e-4 for d in printed_diffs(result.output).values())
    assert onnxruntime_diff(ckpt, out, (1, 3, 29, 45)) <= 1e-4


def test_failed_check_writes_nothing(tmp_path, tiny_checkpoint):
    ckpt = tiny_checkpoint("hdc")
    out = tmp_path / "hdc.onnx"
    result = run(ckpt, "--onnx", out, "--height", 32, "--width", 32, "--atol", 1e-12)
    assert result.exit_code == 2 and "differs from PyTorch" in result.output
    assert sorted(tmp_path.iterdir()) == [ckpt]


def test_user_errors(tmp_path, tiny_checkpoint):
    ckpt = tiny_checkpoint("hdc")
    assert run(ckpt, "--onnx", tmp_path, "--height", 16, "--width", 16).exit_code == 2
    missing = run(tmp_path / "missing.pt", "--onnx", tmp_path / "m.onnx")
    assert missing.exit_code == 2 and "checkpoint not found" in missing.output
    assert run(ckpt, "--onnx", tmp_path / "old.onnx", "--opset", 16).exit_code == 2
    assert not list(tmp_path.glob("*.onnx"))
