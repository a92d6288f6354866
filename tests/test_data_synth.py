"""The synthetic benchmark: determinism, object sizes, objects.json against the masks, colour cues."""

import hashlib
import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from segdil.cli import cli
from segdil.config import SynthConfig
from segdil.data.io import load_image, load_mask
from segdil.data.synth import SYNTH_CLASSES, SyntheticSegmentation, generate_sample, hard_fields, synth_class_names
from segdil.data.synth_write import write_synthetic
from segdil.errors import SegdilError


def _tree_digest(root):
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_sample_is_a_pure_function_of_seed_split_index():
    cfg = SynthConfig(size=48, max_object=24.0)
    a_img, a_mask, a_obj = generate_sample(cfg, "train", 3)
    b_img, b_mask, b_obj = generate_sample(cfg, "train", 3)
    assert a_img.dtype == np.uint8 and a_img.shape == (48, 48, 3)
    assert a_mask.dtype == np.uint8 and a_mask.shape == (48, 48)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_mask, b_mask) and a_obj == b_obj
    assert not np.array_equal(a_img, generate_sample(cfg, "train", 4)[0])
    assert not np.array_equal(a_img, generate_sample(cfg, "val", 3)[0])
    other_seed = SynthConfig(size=48, max_object=24.0, seed=1)
    assert not np.array_equal(a_img, generate_sample(other_seed, "train", 3)[0])


def test_write_synthetic_same_seed_gives_identical_bytes(tmp_path):
    cfg = SynthConfig(n_train=5, n_val=2, size=32, max_object=16.0, objects_per_image=[2, 5])
    first = write_synthetic(tmp_path / "a", cfg)
    second = write_synthetic(tmp_path / "b", cfg)
    assert _tree_digest(first) == _tree_digest(second)
    names = sorted(str(p.relative_to(first)) for p in first.rglob("*") if p.is_file())
    assert "objects.json" in names and "preview.png" in names and "classes.yaml" in names
    assert len([n for n in names if n.startswith("train/images/")]) == 5
    assert len([n for n in names if n.startswith("val/masks/")]) == 2
    third = write_synthetic(tmp_path / "c", SynthConfig(n_train=5, n_val=2, size=32, max_object=16.0, objects_per_image=[2, 5], seed=7))
    assert _tree_digest(third) != _tree_digest(first)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_write_synthetic_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    cfg = SynthConfig(n_train=1, n_val=1, size=16, max_object=8.0)
    with pytest.raises(SegdilError, match="did not write"):
        write_synthetic(tmp_path / "out", cfg)
    assert (tmp_path / "out" / "keep.txt").exists()
    with pytest.raises(SegdilError, match="did not write"):  # --overwrite replaces only what segdil wrote
        write_synthetic(tmp_path / "out", cfg, overwrite=True)
    assert (tmp_path / "out" / "keep.txt").exists()


def test_objects_json_agrees_with_masks(tmp_path):
    cfg = SynthConfig(n_train=6, n_val=2, size=48, max_object=24.0, objects_per_image=[4, 10])
    root = write_synthetic(tmp_path / "synth", cfg)
    meta = json.loads((root / "objects.json").read_text())
    assert meta["classes"] == list(SYNTH_CLASSES)
    checked = 0
    for split, images in meta["objects"].items():
        assert len(images) == (cfg.n_train if split == "train" else cfg.n_val)
        for stem, objects in images.items():
            mask = load_mask(root / split / "masks" / f"{stem}.png")
            image = load_image(root / split / "images" / f"{stem}.png")
            assert np.array_equal(mask, generate_sample(cfg, split, int(stem))[1])
            assert np.array_equal(image, generate_sample(cfg, split, int(stem))[0])
            for class_id in range(1, len(SYNTH_CLASSES)):
                listed = sum(o["area"] for o in objects if o["class_id"] == class_id)
                assert listed == int((mask == class_id).sum())
            for obj in objects:
                x, y, w, h = obj["bbox"]
                inside = mask[y : y + h, x : x + w] == obj["class_id"]
                assert SYNTH_CLASSES[obj["class_id"]] == obj["class"]
                assert obj["area"] >= 1 and inside.sum() >= obj["area"]
                # the box is tight: every edge row/column holds a pixel of the class
                assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
                checked += 1
    assert checked > 20


def test_object_sizes_are_log_uniform_over_the_requested_range():
    low, high = 2.0, 24.0
    cfg = SynthConfig(size=64, min_object=low, max_object=high, objects_per_image=[6, 12])
    sizes = []
    for index in range(120):
        _, _, objects = generate_sample(cfg, "train", index)
        sizes += [math.sqrt(o["area"]) for o in objects if o["class"] != "line"]
    sizes = np.array(sizes)
    assert len(sizes) > 500
    assert sizes.max() <= high * 1.3
    assert np.mean((sizes >= low / 1.5) & (sizes <= high * 1.15)) > 0.9  # occlusion only shrinks objects
    # four equal bins in log size, each with about a quarter of the objects
    edges = np.exp(np.linspace(math.log(low), math.log(high), 5))
    shares = np.histogram(np.clip(sizes, low, high), bins=edges)[0] / len(sizes)
    assert np.all(shares > 0.15) and np.all(shares < 0.35), shares
    assert abs(np.median(np.log(sizes)) - math.log(math.sqrt(low * high))) < 0.35


def test_small_objects_carry_their_class_colour():
    cfg = SynthConfig(size=64, min_object=2.0, max_object=4.0, objects_per_image=[8, 12])
    votes = {c: [] for c in ("disc", "square", "triangle", "line")}
    for index in range(40):
        image, mask, objects = generate_sample(cfg, "train", index)
        for obj in objects:
            x, y, w, h = obj["bbox"]
            pixels = image[y : y + h, x : x + w][mask[y : y + h, x : x + w] == obj["class_id"]].astype(float)
            votes[obj["class"]].append(pixels.mean(axis=0))
    red, green, blue = (np.array(votes[c]) for c in ("disc", "square", "triangle"))
    assert np.mean(red.argmax(axis=1) == 0) > 0.85
    assert np.mean(green.argmax(axis=1) == 1) > 0.85
    assert np.mean(blue.argmax(axis=1) == 2) > 0.85
    yellow = np.array(votes["line"])
    assert np.mean(np.minimum(yellow[:, 0], yellow[:, 1]) > yellow[:, 2]) > 0.85


def test_thin_lines_are_thin_and_optional():
    cfg = SynthConfig(size=64, max_object=24.0)
    lines = [o for i in range(30) for o in generate_sample(cfg, "train", i)[2] if o["class"] == "line"]
    assert len(lines) > 10
    for obj in lines:
        _, _, w, h = obj["bbox"]
        assert obj["area"] <= 3.5 * (math.hypot(w, h) + 3), obj
    no_lines = SynthConfig(size=64, max_object=24.0, thin_lines=False)
    assert synth_class_names(no_lines) == ["background", "disc", "square", "triangle"]
    for index in range(10):
        _, mask, objects = generate_sample(no_lines, "train", index)
        assert mask.max() <= 3 and all(o["class"] != "line" for o in objects)


def test_in_memory_dataset_items():
    cfg = SynthConfig(n_train=4, n_val=2, size=32, max_object=16.0)
    train = SyntheticSegmentation("train", cfg)
    assert len(train) == 4 and len(SyntheticSegmentation("val", cfg)) == 2
    image, mask = train[1]
    assert image.dtype == torch.float32 and image.shape == (3, 32, 32)
    assert mask.dtype == torch.int64 and mask.shape == (32, 32)
    raw_image, raw_mask, _ = generate_sample(cfg, "train", 1)
    assert torch.equal(mask, torch.from_numpy(raw_mask).long())
    expected = (torch.from_numpy(raw_image).permute(2, 0, 1).float() / 255 - torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    assert torch.allclose(image, expected, atol=1e-6)
    assert torch.equal(train[1 + 3 * len(train)][0], image)  # key k reads sample k % len
    with pytest.raises(SegdilError, match="split"):
        SyntheticSegmentation("test", cfg)
    with pytest.raises(SegdilError, match="max_object"):
        SyntheticSegmentation("train", SynthConfig(size=32, max_object=48.0))


def test_synth_command(tmp_path):
    out = tmp_path / "bench"
    args = ["data", "synth", str(out), "--n-train", "3", "--n-val", "1", "--size", "32", "--max-object", "12", "--objects-per-image", "2", "4", "--no-thin-lines", "--seed", "5"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "wrote 3 train + 1 val" in result.output
    meta = json.loads((out / "objects.json").read_text())
    assert meta["classes"] == ["background", "disc", "square", "triangle"] and meta["config"]["seed"] == 5
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2 and "not empty" in again.output
    bad = CliRunner().invoke(cli, ["data", "synth", str(tmp_path / "x"), "--size", "32", "--max-object", "40"])
    assert bad.exit_code == 2 and "max_object" in bad.output and not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- the hard scene


def _class_hued_background_share(scene: str) -> float:
    """Share of strongly red pixels (the disc colour) that the mask calls background."""
    import cv2

    red = background = 0
    for index in range(8):
        image, mask, _ = generate_sample(SynthConfig(size=64, max_object=32.0, scene=scene), "train", index)
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL).astype(np.int32)
        hue = hsv[..., 0] * 360 / 256
        strong = ((hue < 12) | (hue > 348)) & (hsv[..., 1] > 150) & (hsv[..., 2] > 128)
        red += int(strong.sum())
        background += int((strong & (mask == 0)).sum())
    return background / max(red, 1)


def test_hard_scene_has_look_alikes_that_count_as_background():
    # standard: a strongly red pixel is a disc; hard: decoys of the same colour lie outside the fields
    assert _class_hued_background_share("standard") < 0.02
    assert _class_hued_background_share("hard") > 0.1


def test_hard_scene_is_deterministic_and_spans_every_size_bin():
    cfg = SynthConfig(size=96, scene="hard")
    a = generate_sample(cfg, "val", 2)
    b = generate_sample(cfg, "val", 2)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert not np.array_equal(a[0], generate_sample(SynthConfig(size=96), "val", 2)[0])
    sizes = [math.sqrt(o["area"]) for i in range(10) for o in generate_sample(cfg, "train", i)[2]]
    for low, high in ((0, 4), (4, 8), (8, 16), (16, 32), (32, 64)):
        assert any(low <= s < high for s in sizes), (low, high)


def test_hard_fields_are_the_fields_the_sample_was_drawn_with(monkeypatch):
    import segdil.data.synth as synth

    drawn = []
    real = synth._hard_background

    def spy(rng, cfg):
        background = real(rng, cfg)
        drawn.append(background[1])
        return background

    cfg = SynthConfig(size=64, max_object=32.0, scene="hard")
    for index in range(3):
        monkeypatch.setattr(synth, "_hard_background", spy)
        generate_sample(cfg, "val", index)
        monkeypatch.undo()
        fields = hard_fields(cfg, "val", index)
        assert fields.dtype == bool and 0 < fields.mean() < 1 and np.array_equal(fields, drawn[index])
    assert not np.array_equal(drawn[0], drawn[1])
    with pytest.raises(SegdilError, match="only the hard scene"):
        hard_fields(SynthConfig(size=96), "val", 0)


def test_field_edge_tool_splits_every_validation_object_by_the_field_edge(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from segdil.checkpoint import save_checkpoint
    from segdil.config import load_config
    from segdil.models import create_model

    root = Path(__file__).resolve().parent.parent
    tool = str(root / "lab" / "field_edge_objects.py")
    sets = ["data.synth.scene=hard", "data.synth.size=64", "data.synth.max_object=32", "data.synth.n_val=3"]
    cfg = load_config(None, sets)
    args = {"name": "hdc", "num_classes": 5, "widths": [4], "blocks": 1}
    ckpt = tmp_path / "hard.pt"
    save_checkpoint({"model_args": args, "model": create_model(**args).state_dict(), "config": cfg.to_dict(), "class_names": list(SYNTH_CLASSES)}, ckpt)
    out = subprocess.run([sys.executable, tool, str(ckpt)], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [r[1] for r in rows[::3]] == ["<8", "8-16", "16-32", "32-64", ">=64"] and [r[2] for r in rows[:3]] == ["inside", "edge", "outside"]
    # the counts per bin and group, computed independently (SciPy's labelling, sizes from the masks)
    from scipy import ndimage

    expected = {}
    for index in range(3):
        mask = generate_sample(cfg.data.synth, "val", index)[1]
        fields = hard_fields(cfg.data.synth, "val", index)
        for c in range(1, 5):
            labels, count = ndimage.label(mask == c, structure=np.ones((3, 3)))
            for k in range(1, count + 1):
                obj = labels == k
                size, share = math.sqrt(obj.sum()), fields[obj].mean()
                label = ["<8", "8-16", "16-32", "32-64", ">=64"][int(np.searchsorted([8, 16, 32, 64], size, side="right"))]
                group = "inside" if share >= 1 else "outside" if share <= 0 else "edge"
                expected[label, group] = expected.get((label, group), 0) + 1
    assert {(r[1], r[2]): int(r[3]) for r in rows if int(r[3])} == expected and len(expected) >= 3

    standard = tmp_path / "standard.pt"
    save_checkpoint({"model_args": args, "model": create_model(**args).state_dict(), "config": load_config(None, sets[1:]).to_dict(), "class_names": list(SYNTH_CLASSES)}, standard)
    bad = subprocess.run([sys.executable, tool, str(standard)], capture_output=True, text=True)
    assert bad.returncode == 1 and "hard synthetic scene only" in bad.stderr and "Traceback" not in bad.stderr
    missing = subprocess.run([sys.executable, tool, str(ckpt), str(tmp_path / "nope.pt")], capture_output=True, text=True)
    assert missing.returncode == 1 and "nope.pt" in missing.stderr and "Traceback" not in missing.stderr and len(missing.stderr.splitlines()) == 1
    assert missing.stdout == ""  # nothing printed for the checkpoints before the bad one either


def test_synth_command_writes_the_hard_scene(tmp_path):
    args = ["data", "synth", "--n-train", "2", "--n-val", "1", "--size", "48", "--max-object", "24", "--scene", "hard"]
    assert CliRunner().invoke(cli, [*args[:2], str(tmp_path / "a"), *args[2:]]).exit_code == 0
    assert CliRunner().invoke(cli, [*args[:2], str(tmp_path / "b"), *args[2:]]).exit_code == 0
    assert _tree_digest(tmp_path / "a") == _tree_digest(tmp_path / "b")
    assert json.loads((tmp_path / "a" / "objects.json").read_text())["config"]["scene"] == "hard"
    bad = CliRunner().invoke(cli, [*args[:2], str(tmp_path / "c"), *args[2:-1], "nope"])
    assert bad.exit_code == 2 and "--scene" in bad.output


def test_unknown_scene_in_a_config_is_a_one_line_error():
    from segdil.config import load_config

    with pytest.raises(SegdilError, match=r"data.synth.scene: expected one of 'standard', 'hard', 'street', got 'nope'"):
        load_config(None, ["data.synth.scene=nope"])


# --------------------------------------------------------------------------- crop_size: auto


@pytest.mark.parametrize("size, crop", [(48, 48), (96, 64), (128, 96), (160, 128), (200, 128), (300, 128), (512, 256), (1024, 512), (2048, 512)])
def test_auto_crop_is_half_the_short_side_at_least_128_within_64_to_512(size, crop):
    from segdil.config import DataConfig
    from segdil.data.transforms import resolve_crop_size

    assert resolve_crop_size(DataConfig(crop_size="auto", synth=SynthConfig(size=size, max_object=16.0))) == crop
    assert resolve_crop_size(DataConfig(crop_size=40)) == 40


def test_auto_crop_reads_a_folder_dataset(tmp_path):
    from PIL import Image

    from segdil.config import DataConfig, load_config
    from segdil.data.transforms import build_train_transform, resolve_crop_size

    images = tmp_path / "train" / "images"
    images.mkdir(parents=True)
    for i, (w, h) in enumerate([(900, 600), (1200, 700), (640, 480)]):
        Image.new("RGB", (w, h)).save(images / f"{i}.png")
    cfg = DataConfig(root=str(tmp_path), crop_size="auto")
    assert resolve_crop_size(cfg) == 288  # median short side 600 -> 300 -> multiple of 32
    image = np.zeros((600, 900, 3), np.uint8)
    out = build_train_transform(DataConfig(root=str(tmp_path), crop_size="auto", scale_range=[1.0, 1.0]))(image=image, mask=np.zeros((600, 900), np.uint8))
    assert out["image"].shape[:2] == (288, 288)
    with pytest.raises(SegdilError, match="data.crop_size=auto: no training images"):
        resolve_crop_size(DataConfig(root=str(tmp_path / "empty"), crop_size="auto"))
    assert load_config("configs/hdc_synth.yaml").data.crop_size == "auto"
    with pytest.raises(SegdilError, match="data.crop_size: expected int or one of 'auto'"):
        load_config(None, ["data.crop_size=big"])
