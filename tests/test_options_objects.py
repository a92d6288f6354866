"""Commands build one options object and pass it (issue #27, item 7): every option of ``segdil bench``
is a field of :class:`BenchOptions` and back, so nothing is forwarded by hand."""

from __future__ import annotations

import dataclasses

from segdil.bench.options import BenchOptions
from segdil.commands.bench import command as bench_command


def test_bench_options_are_the_commands_parameters(monkeypatch):
    from click.testing import CliRunner

    import segdil.bench.options as options_module
    from segdil.cli import cli

    params = {p.name for p in bench_command.params}
    assert params == {f.name for f in dataclasses.fields(BenchOptions)}
    seen = []
    monkeypatch.setattr(options_module, "run_bench", lambda options: seen.append(options) or "ok")
    assert CliRunner().invoke(cli, ["bench"]).exit_code == 0
    assert seen == [BenchOptions()]  # the command's defaults are the object's
    assert CliRunner().invoke(cli, ["bench", "--infer", "--size", "64x32", "--model", "hdc", "--no-channels-last"]).exit_code == 0
    assert seen[1] == BenchOptions(models=("hdc",), size="64x32", train=False, channels_last=False)


def test_predict_passes_one_inference_options(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import segdil.inference.predict_files as predict_module
    from segdil.cli import cli
    from segdil.inference.engine import InferenceOptions

    seen = {}

    def fake_predict_files(checkpoint, inputs, out, options, **rest):
        seen["options"] = options
        raise SystemExit(0)

    monkeypatch.setattr(predict_module, "predict_files", fake_predict_files)
    result = CliRunner().invoke(cli, ["predict", str(tmp_path / "m.pt"), str(tmp_path), "--out", str(tmp_path / "o"), "--precision", "fp32", "--tile", "64", "--overlap", "8"])
    assert result.exit_code == 0, result.output
    assert seen["options"] == InferenceOptions(precision="fp32", tile=64, overlap=8)
