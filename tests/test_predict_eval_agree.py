"""`segdil predict` writes exactly the masks that `segdil eval --checkpoint` scores."""

import json

import torch
from click.testing import CliRunner

from segdil.checkpoint import save_checkpoint
from segdil.cli import cli
from segdil.config import Config, SynthConfig
from segdil.data.synth_write import write_synthetic
from segdil.models import create_model


def test_predicted_masks_score_exactly_like_eval_checkpoint(tmp_path):
    root = tmp_path / "data"
    write_synthetic(root, SynthConfig(n_train=2, n_val=5, size=40, max_object=20))
    torch.manual_seed(0)
    args = {"name": "hdc", "num_classes": 5, "widths": [8], "blocks": 1}
    model = create_model(**args)
    with torch.no_grad():  # a few confident classes, so predictions are not all one class
        model.head.bias.copy_(torch.tensor([0.5, 0.0, 0.2, -0.1, 0.1]))
    ckpt = tmp_path / "model.pt"
    save_checkpoint({"model_args": args, "model": model.state_dict(), "config": Config().to_dict(), "class_names": ["background", "disc", "square", "triangle", "line"]}, ckpt)

    runner = CliRunner()
    predicted = runner.invoke(cli, ["predict", str(ckpt), str(root / "val" / "images"), "--out", str(tmp_path / "pred"), "--device", "cpu"])
    assert predicted.exit_code == 0, predicted.output
    scored_files = runner.invoke(cli, ["eval", "--pred", str(tmp_path / "pred"), "--gt", str(root / "val" / "masks"), "--num-classes", "5", "--json", str(tmp_path / "files.json")])
    assert scored_files.exit_code == 0, scored_files.output
    scored_ckpt = runner.invoke(cli, ["eval", "--checkpoint", str(ckpt), "--data", str(root), "--split", "val", "--device", "cpu", "--json", str(tmp_path / "ckpt.json")])
    assert scored_ckpt.exit_code == 0, scored_ckpt.output

    files = json.loads((tmp_path / "files.json").read_text())
    direct = json.loads((tmp_path / "ckpt.json").read_text())
    assert files["num_objects"] == direct["num_objects"] > 0
    for key in ("mIoU", "per_class_iou", "pixel_acc", "mDice", "bins", "small_object_iou", "iIoU"):
        assert files[key] == direct[key], key
