"""The street-scale benchmark: determinism, sizes, the perspective's size distribution, decoys, and
the Cityscapes layout read back by segdil's reader and scored by the official evaluator."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from segdil.cli import cli
from segdil.commands.data import _size
from segdil.config import SynthConfig, load_config
from segdil.data.cityscapes import CLASS_NAMES, TRAIN_TO_LABEL_ID
from segdil.data.formats import check_format, open_dataset
from segdil.data.synth import SyntheticSegmentation, generate_sample, synth_class_names, validate_synth_config
from segdil.data.synth_street import LABELS, THINGS, cityscapes_ids, generate_street, street_shape
from segdil.data.synth_write import write_synthetic
from segdil.errors import SegdilError


def street(size: int = 64, **kwargs) -> SynthConfig:
    return SynthConfig(scene="street", size=size, **kwargs)


def test_scene_is_a_pure_function_of_seed_split_index():
    a, b = generate_street(street(), "train", 3), generate_street(street(), "train", 3)
    assert a.image.dtype == np.uint8 and a.image.shape == (64, 128, 3) and a.mask.shape == (64, 128)
    for x, y in ((a.image, b.image), (a.mask, b.mask), (a.objects_map, b.objects_map), (a.decoys_map, b.decoys_map)):
        assert np.array_equal(x, y)
    assert a.objects == b.objects and a.decoys == b.decoys
    assert not np.array_equal(a.image, generate_street(street(), "train", 4).image)
    assert not np.array_equal(a.image, generate_street(street(), "val", 3).image)
    assert not np.array_equal(a.image, generate_street(street(seed=1), "train", 3).image)
    image, mask, objects = generate_sample(street(), "train", 3)  # the benchmark's entry point serves the same scene
    assert np.array_equal(image, a.image) and np.array_equal(mask, a.mask) and objects == a.objects


def test_1024x512_by_default_2048x1024_on_request_the_same_scene():
    assert _size(None, "street") == 512 and _size("1024x512", "street") == 512 and _size("2048x1024", "street") == 1024
    assert street_shape(street(512)) == (512, 1024) and street_shape(street(1024)) == (1024, 2048)
    with pytest.raises(SegdilError, match="twice as wide"):
        _size("1000x512", "street")
    with pytest.raises(SegdilError, match="square"):
        _size("128x64", "standard")
    with pytest.raises(SegdilError, match="too small"):
        validate_synth_config(street(32))
    small, large = generate_street(street(512), "val", 0), generate_street(street(1024), "val", 0)
    assert small.image.shape == (512, 1024, 3) and large.image.shape == (1024, 2048, 3)
    assert (large.mask[::2, ::2] == small.mask).mean() > 0.9  # the layout is drawn in metres: same scene, twice the pixels


def test_most_instances_are_small_some_large_some_tiny():
    cfg = street(512)
    sizes, by_class = [], {}
    for index in range(4):
        scene = generate_street(cfg, "train", index)
        areas = np.bincount(scene.objects_map.ravel())
        class_of = np.zeros(len(areas), dtype=np.uint8)
        for obj in scene.objects:
            assert areas[obj["id"]] == obj["area"]
            class_of[obj["id"]] = obj["class_id"]
            sizes.append(np.sqrt(obj["area"]))
            by_class[obj["class"]] = by_class.get(obj["class"], 0) + 1
        inside = scene.objects_map > 0
        assert np.array_equal(scene.mask[inside], class_of[scene.objects_map[inside]])  # an object's pixels carry its class
    sizes = np.array(sizes)
    print(f"{len(sizes)} instances: <32 px {np.mean(sizes < 32):.2f}, <=8 px {np.mean(sizes <= 8):.2f}, max {sizes.max():.0f}; {by_class}")
    assert np.mean(sizes < 32) > 0.6  # most, as on Cityscapes
    assert (sizes > 150).any() and (sizes <= 8).sum() >= 10
    assert set(by_class) == {CLASS_NAMES[LABELS[t]] for t in THINGS}


def test_decoys_look_like_things_and_are_labelled_as_the_stuff_under_them():
    stuff = {LABELS[k] for k in ("sky", "building")}
    kinds = set()
    for index in range(6):
        scene = generate_street(street(128), "train", index)
        assert not (scene.objects_map[scene.decoys_map > 0]).any()
        for decoy in scene.decoys:
            assert decoy["label_id"] in stuff and decoy["area"] > 0
            assert set(np.unique(scene.mask[scene.decoys_map == decoy["id"]]).tolist()) == {decoy["label_id"]}
            kinds.add((decoy["kind"], decoy["label"]))
    assert {("sign", "sky"), ("person", "building"), ("pole", "building")} <= kinds


def test_cityscapes_layout_round_trips_with_instances_and_the_official_scorer(tmp_path):
    cfg = street(n_train=2, n_val=3)
    out = write_synthetic(tmp_path / "street", cfg)
    assert not check_format("cityscapes", out).problems
    ds, memory = open_dataset("cityscapes", out, "val"), SyntheticSegmentation("val", cfg)
    assert ds.class_names == synth_class_names(cfg) == memory.class_names == CLASS_NAMES and memory.instances is not None
    from segdil.metrics.cityscapes import cityscapes_evaluator

    evaluator, preds = cityscapes_evaluator(), []
    for i in range(len(ds)):
        image, mask = ds.load(i)
        scene = generate_street(cfg, "val", i)
        ids = ds.load_instances(i, mask)
        assert np.array_equal(image, scene.image) and np.array_equal(mask, scene.mask)
        assert np.array_equal(ids, memory.load_instances(i)) and np.array_equal(memory.load(i)[1], mask)
        assert set(np.unique(ids[ids > 0] // 1000).tolist()) <= {24, 26}  # person and car, Cityscapes label ids
        assert np.array_equal(np.asarray(Image.open(ds.instances[i])), cityscapes_ids(scene)[1])
        pred = np.roll(mask, 1, axis=1)
        preds.append(tmp_path / f"pred{i}.png")
        Image.fromarray(TRAIN_TO_LABEL_ID[pred]).save(preds[-1])
        evaluator.update(torch.from_numpy(pred)[None].long(), torch.from_numpy(mask)[None].long(), [ids])
    ours = evaluator.compute()
    assert ours["object_source"] == "instances" and ours["num_objects"] > 0
    cs = pytest.importorskip("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling")
    if not hasattr(np, "in1d"):  # removed in numpy 2.4; the official code still calls it
        np.in1d = lambda a, b, invert=False: np.isin(np.ravel(a), b, invert=invert)
    cs.args.quiet, cs.args.JSONOutput, cs.args.evalInstLevelScore, cs.args.evalPixelAccuracy = True, False, True, True
    theirs = cs.evaluateImgLists([str(p) for p in preds], [str(p) for p in ds.masks], cs.args)
    assert abs(ours["mIoU"] - theirs["averageScoreClasses"]) < 1e-6 and abs(ours["iIoU"] - theirs["averageScoreInstClasses"]) < 1e-6


def test_cli_writes_the_layout_and_refuses_an_existing_output_without_overwrite(tmp_path):
    runner = CliRunner()
    args = ["data", "synth", str(tmp_path / "out"), "--scene", "street", "--size", "128x64", "--n-train", "1", "--n-val", "1"]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "(128x64, Cityscapes layout)" in first.output and "decoys:" in first.output
    names = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png"))
    assert "gtFine/val/street/street_000000_000019_gtFine_instanceIds.png" in names and "leftImg8bit/train/street/street_000000_000019_leftImg8bit.png" in names
    before = (tmp_path / "out" / "objects.json").read_bytes()
    again = runner.invoke(cli, args)
    assert again.exit_code == 2 and "--overwrite" in again.output and len(again.output.strip().splitlines()[-1]) < 200
    assert (tmp_path / "out" / "objects.json").read_bytes() == before
    assert runner.invoke(cli, [*args, "--overwrite"]).exit_code == 0
    bad = runner.invoke(cli, [*args[:-4], "--size", "100x64", "--overwrite"])
    assert bad.exit_code == 2 and "twice as wide" in bad.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_the_shipped_base_config_serves_street_scenes_in_memory():
    from segdil.data import build_datasets

    cfg = load_config("configs/street/_base_street.yaml", ["data.synth.size=64", "data.crop_size=64", "data.synth.n_train=2", "data.synth.n_val=1"])
    assert cfg.data.synth.scene == "street" and cfg.eval.background_class is None
    train, val, names = build_datasets(cfg.data)
    image, mask = train[0]
    assert names == CLASS_NAMES and image.shape == (3, 64, 64) and mask.shape == (64, 64)
    assert val.load_instances(0).shape == (64, 128)
