"""lab/street_study.py's own logic (which seeds count after a time limit, the table it prints) and
lab/device_street.sh's and lab/gpu_bench.sh's refusal when the GPU machine lacks the packages."""

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("street_study", ROOT / "lab" / "street_study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def finish(runs: Path, model: str, seed: int) -> None:
    (runs / model / f"seed{seed}").mkdir(parents=True, exist_ok=True)
    (runs / model / f"seed{seed}" / "run.json").write_text("{}")


def test_finished_seeds_counts_seeds_every_model_finished_from_seed_0(study, tmp_path):
    models = ("a", "b")
    assert study.finished_seeds(tmp_path, models, 3) == 0
    finish(tmp_path, "a", 0)
    assert study.finished_seeds(tmp_path, models, 3) == 0  # b has not finished seed 0
    finish(tmp_path, "b", 0)
    finish(tmp_path, "a", 1)
    assert study.finished_seeds(tmp_path, models, 3) == 1  # b's seed 1 was stopped
    finish(tmp_path, "a", 2)
    finish(tmp_path, "b", 2)
    assert study.finished_seeds(tmp_path, models, 3) == 1  # seed 2 without seed 1 does not count
    finish(tmp_path, "b", 1)
    assert study.finished_seeds(tmp_path, models, 3) == 3
    assert study.finished_seeds(tmp_path, models, 2) == 2


def test_table_shows_compare_and_bench_figures_and_dashes_for_missing_ones(study, tmp_path):
    (tmp_path / "compare").mkdir()
    (tmp_path / "bench").mkdir()
    results = {
        "aggregate": {"hdc-context": {"metrics": {"mIoU": {"mean": 0.5, "std": 0.01}, "small_object_iou": {"mean": 0.25, "std": None}}, "step": {"mean": 321.0}}},
        "environment": {"machine": {"gpu": "Some GPU", "cpu": "Some CPU"}},
    }
    (tmp_path / "compare" / "results.json").write_text(json.dumps(results))
    train = {"variants": [{"img_per_s": 123.4, "peak_memory_mb": 2048.0, "ceiling_share": 0.42}]}
    (tmp_path / "bench" / "hdc-context-train.json").write_text(json.dumps(train))
    (tmp_path / "bench" / "hdc-context-predict.json").write_text(json.dumps({"variants": [{}], "predict": {"predict_img_per_s": 3.456}}))
    sizes = {"models": [{"largest_image": {"channels_last+amp": {"wide": "2944x1472"}, "channels_last+amp+memory_saver": {"wide": "4736x2368"}}}]}
    (tmp_path / "bench" / "hdc-context-sizes.json").write_text(json.dumps(sizes))
    (tmp_path / "bench" / "fcn8s-sizes.json").write_text(json.dumps({"models": [{"largest_image": {"channels_last+amp": None}}]}))
    text = study.table(tmp_path, "street study: 3 seed(s)", ["compare stopped at the time limit: 2 of 3 seeds"])
    lines = text.splitlines()
    assert lines[0] == "street study: 3 seed(s) (Some GPU)"
    flagship = next(line for line in lines if line.startswith("| hdc-context |"))
    assert flagship == "| hdc-context | 0.500 ± 0.010 | 0.250 | – | – | 321 | 123.4 | 3.46 | 2048 | 42% | 2944x1472 (4736x2368 saver) |"
    fcn = next(line for line in lines if line.startswith("| fcn8s |"))
    assert fcn.count("–") == 10  # no run, no bench and not even 32 px fit: every cell a dash
    assert lines[-1] == "compare stopped at the time limit: 2 of 3 seeds"
    assert len([line for line in lines if line.startswith("| ") and not line.startswith("| model") and not line.startswith("| ---")]) == len(study.MODELS)


@pytest.mark.parametrize("script", ["device_street.sh", "gpu_bench.sh"])
def test_device_script_without_segdil_or_wheels_says_how_to_get_them(tmp_path, script):
    (tmp_path / "lab").mkdir()
    for name in (script, "device_packages.sh"):
        shutil.copy(ROOT / "lab" / name, tmp_path / "lab")
    out = tmp_path / "out"
    env = {"PATH": "/usr/bin:/bin", "PYTHON": "false", "OUT": str(out), "STUDY": str(tmp_path / "study")}
    proc = subprocess.run(["bash", str(tmp_path / "lab" / script)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "run bash lab/device_wheels.sh here and carry .whl" in proc.stderr
    assert not (out / "table.md").exists() and not (out / "gpu_bench.txt").exists() and not (tmp_path / "study").exists()
