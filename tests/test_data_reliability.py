"""Bad masks met after the up-front check: one line naming the file, at training, in workers and in eval (issue #30)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from bad_input_cases.data_and_api import _cityscapes_small_instances, _voc_mask_77
from bad_input_kit import assert_one_line_error, invoke, train_args
from PIL import Image

from segdil.checkpoint import save_checkpoint
from segdil.config import Config
from segdil.data.cityscapes import CLASS_NAMES
from segdil.data.formats import check_format, open_dataset
from segdil.data.loader import build_loader, worker_message
from segdil.errors import SegdilError
from segdil.models import create_model, model_class


def test_training_names_an_out_of_range_mask_met_mid_run(tmp_path):
    root = _voc_mask_77(tmp_path)  # the third train pair: the up-front check decodes only the first
    assert check_format("voc", root, ["train"], sample=1).ok
    result = invoke(train_args(tmp_path / "run", "data.format=voc", f"data.root={root}", "data.crop_size=16", "train.batch_size=4"))
    line = assert_one_line_error(result, 2, "2007_000002.png", "values 77 out of range", "21 voc classes")
    assert "IndexError" not in result.output and "Target" not in line


def test_a_workers_error_is_its_one_line(tmp_path):
    root = _voc_mask_77(tmp_path)
    ds = open_dataset("voc", root, "train")
    with pytest.raises(SegdilError) as caught:
        list(build_loader(ds, 1, num_workers=1, announce=False))
    message = caught.value.message
    assert message.startswith(str(root / "SegmentationClass" / "2007_000002.png")) and "values 77" in message
    tail = message.replace(str(tmp_path), "")
    assert "Traceback" not in tail and "worker" not in tail and "\n" not in message
    assert worker_message("plain message") == "plain message"


def test_folder_dataset_refuses_a_mask_changed_after_the_check(tmp_path):
    from bad_input_kit import dataset

    from segdil.data.folder import FolderDataset

    root = dataset(tmp_path / "data")
    ds = FolderDataset(root, "train")
    mask = np.zeros((24, 24), np.uint8)
    mask[0, 0] = 9
    Image.fromarray(mask).save(ds.masks[1])
    ds.load(0)
    with pytest.raises(SegdilError, match=r"b.png: values 9 out of range \(3 classes in classes.yaml, 0-2"):
        ds.load(1)


def _cityscapes_checkpoint(path: Path) -> Path:
    args = {"name": "hdc", "num_classes": len(CLASS_NAMES), **model_class("hdc").tiny_args()}
    cfg = Config().to_dict()
    cfg["data"]["format"] = "cityscapes"
    save_checkpoint({"model_args": args, "model": create_model(**args).state_dict(), "config": cfg, "class_names": list(CLASS_NAMES)}, path)
    return path


def test_eval_names_a_wrong_size_instance_map(tmp_path):
    torch.set_num_threads(1)
    root = _cityscapes_small_instances(tmp_path)
    ckpt = _cityscapes_checkpoint(tmp_path / "m.pt")
    result = invoke(["eval", "--checkpoint", ckpt, "--data", root, "--format", "cityscapes", "--device", "cpu"])
    assert_one_line_error(result, 2, "_instanceIds.png", "instance mask is 16x16 but the mask is 64x32")
