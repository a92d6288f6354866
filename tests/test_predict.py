import shutil
from pathlib import Path

import numpy as np
import pytest
import skimage
import torch
from click.testing import CliRunner
from helpers import make_checkpoint
from PIL import Image

import segdil.inference.engine as engine
from segdil.checkpoint import model_from_checkpoint
from segdil.cli import cli
from segdil.config import Config
from segdil.data.io import load_image
from segdil.data.transforms import to_tensor
from segdil.inference.engine import InferenceOptions, Predictor

SKIMAGE_DATA = Path(skimage.__file__).parent / "data"
MEAN, STD = Config().data.mean, Config().data.std


def photo(name: str, size: tuple[int, int] | None) -> Image.Image:
    image = Image.open(SKIMAGE_DATA / name)
    image.load()
    return image.resize(size, Image.BILINEAR) if size else image


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture
def photos(tmp_path) -> Path:
    """Real photographs (downscaled) in every input format, plus broken files."""
    folder = tmp_path / "photos"
    folder.mkdir()
    photo("astronaut.png", (61, 53)).save(folder / "astronaut.png")
    photo("coffee.png", (60, 40)).save(folder / "coffee.jpg", quality=90)
    photo("camera.png", (45, 50)).save(folder / "camera.png")  # 8-bit gray
    photo("rocket.jpg", (64, 43)).save(folder / "rocket.jpeg", quality=90)
    photo("logo.png", (48, 48)).save(folder / "logo.png")  # RGBA
    shutil.copy(SKIMAGE_DATA / "multipage.tif", folder / "multipage.tif")  # gray, two pages
    gray16 = (np.asarray(photo("coins.png", (38, 30)), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(gray16).save(folder / "coins16.png")
    assert Image.open(folder / "coins16.png").mode.startswith("I")
    (folder / "truncated.png").write_bytes((SKIMAGE_DATA / "astronaut.png").read_bytes()[:3000])
    (folder / "notes.png").write_text("not an image\n")
    (folder / "readme.txt").write_text("ignored: not an image extension\n")
    return folder


GOOD = ["astronaut", "coffee", "camera", "rocket", "logo", "multipage", "coins16"]
BAD = ["truncated.png", "notes.png"]


def run(*args: str):
    return CliRunner().invoke(cli, ["predict", *map(str, args)], catch_exceptions=False)


def predicted_logits(model, path: Path, **options) -> torch.Tensor:
    """The logits eval scores: the Predictor (predict's defaults unless ``options``) on the image read as in training."""
    image = to_tensor(load_image(path), MEAN, STD)
    return Predictor(model, "cpu", InferenceOptions(**options)).logits(image[None])[0]


def expected_mask(model, path: Path, **options) -> np.ndarray:
    return predicted_logits(model, path, **options).argmax(0).numpy().astype(np.uint8)


def test_folder_of_photos_masks_equal_the_scored_prediction(ckpt, photos, tmp_path):
    out = tmp_path / "out"
    result = run(ckpt, photos, "--out", out, "--overlay", "--probs", "--device", "cpu")
    assert result.exit_code == 1, result.output
    for name in BAD:
        assert str(photos / name) in result.output
    assert "2 file(s) skipped" in result.output and "7 image(s) predicted" in result.output
    model = model_from_checkpoint(ckpt)
    sources = {p.stem: p for p in photos.iterdir()}
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(f"{s}{suffix}" for s in GOOD for suffix in (".png", "_overlay.png", "_probs.npy"))
    for stem in GOOD:
        source = sources[stem]
        width, height = Image.open(source).size
        mask_image = Image.open(out / f"{stem}.png")
        assert mask_image.mode == "P" and mask_image.size == (width, height)
        mask = np.asarray(mask_image)
        overlay = np.asarray(Image.open(out / f"{stem}_overlay.png").convert("RGB"))
        assert overlay.shape[1:] == (width, 3) and overlay.shape[0] > height  # the picture, then the legend strip
        probs = np.load(out / f"{stem}_probs.npy")
        assert probs.dtype == np.float16 and probs.shape == (3, height, width)
        np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1.0, atol=3e-3)
        # the guard's choice for an image may depend on the images before it (it settles on fp32
        # once most needed it): the outputs are those of a fresh Predictor or of its fp32 path
        candidates = [predicted_logits(model, source), predicted_logits(model, source, precision="fp32")]
        logits = next((c for c in candidates if np.allclose(probs.astype(np.float32), torch.softmax(c, 0).numpy(), atol=1e-3)), None)
        assert logits is not None, f"{stem}: probabilities match neither the guarded nor the fp32 prediction"
        np.testing.assert_array_equal(mask, logits.argmax(0).numpy().astype(np.uint8))


def test_mask_palette_uses_checkpoint_colours(tmp_path, photos):
    colours = [[10, 20, 30], [200, 0, 0], [0, 200, 0]]
    ckpt = make_checkpoint(tmp_path / "coloured.pt", class_colors=colours)
    out = tmp_path / "out"
    assert run(ckpt, photos / "astronaut.png", "--out", out, "--overlay").exit_code == 0
    palette = Image.open(out / "astronaut.png").getpalette()[:9]
    assert palette == [v for c in colours for v in c]
    mask = np.asarray(Image.open(out / "astronaut.png"))
    image = load_image(photos / "astronaut.png").astype(int)
    overlay = np.asarray(Image.open(out / "astronaut_overlay.png")).astype(int)[: image.shape[0]]
    blended = (image + np.array(colours)[mask]) / 2
    blended[mask == 0] = image[mask == 0]  # the background class (eval.background_class 0) keeps the photo
    assert np.abs(overlay - blended).max() <= 1


def test_recursive_keeps_the_folder_layout(ckpt, tmp_path):
    root = tmp_path / "in"
    (root / "a" / "b").mkdir(parents=True)
    photo("astronaut.png", (32, 24)).save(root / "top.png")
    photo("coffee.png", (30, 20)).save(root / "a" / "b" / "deep.jpg")
    photo("camera.png", (20, 20)).save(root / "a" / "x.y.png")
    (root / ".hidden").mkdir()
    photo("camera.png", (20, 20)).save(root / ".hidden" / "skip.png")
    out = tmp_path / "out"
    assert run(ckpt, root, "--out", out).exit_code == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["top.png"]
    result = run(ckpt, root, "--out", out, "--recursive", "--overwrite")
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["a/b/deep.png", "a/x.y.png", "top.png"]
    assert Image.open(out / "a" / "b" / "deep.png").size == (30, 20)


def test_tiling_and_batching_options_give_the_prediction_of_the_predictor(ckpt, photos, tmp_path):
    out = tmp_path / "out"
    result = run(ckpt, photos / "astronaut.png", photos / "coffee.jpg", photos / "camera.png", "--out", out, "--tile", 24, "--overlap", 8, "--batch-size", 2)
    assert result.exit_code == 0, result.output
    model = model_from_checkpoint(ckpt)
    for source, stem in [(photos / "astronaut.png", "astronaut"), (photos / "coffee.jpg", "coffee"), (photos / "camera.png", "camera")]:
        expected = expected_mask(model, source, tile=24, overlap=8)
        np.testing.assert_array_equal(np.asarray(Image.open(out / f"{stem}.png")), expected)


@pytest.mark.slow
def test_large_image_is_predicted_at_full_size_in_bounded_tiles(ckpt, tmp_path, monkeypatch):
    ys, xs = np.mgrid[0:2000, 0:3000]
    big = np.stack([(xs // 7) % 256, (ys // 5) % 256, ((xs + ys) // 11) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(big).save(tmp_path / "big.png", compress_level=1)
    seen, capacity = [], []
    real_run = engine.Predictor._run
    monkeypatch.setattr(engine.Predictor, "_run", lambda self, batch, *context, **kw: seen.append(tuple(batch.shape)) or capacity.append(self.pixel_capacity()) or real_run(self, batch, *context, **kw))
    out = tmp_path / "out"
    assert run(ckpt, tmp_path / "big.png", "--out", out, "--memory-budget", 64).exit_code == 0
    assert Image.open(out / "big.png").size == (3000, 2000)
    assert len(seen) > 1 and all(n * h * w <= cap for (n, _, h, w), cap in zip(seen, capacity))


def test_fused_model_predicts_the_same(ckpt, photos, tmp_path):
    plain, fused = tmp_path / "plain", tmp_path / "fused"
    assert run(ckpt, photos / "astronaut.png", "--out", plain, "--probs", "--no-fuse", "--precision", "fp32").exit_code == 0
    assert run(ckpt, photos / "astronaut.png", "--out", fused, "--probs", "--fuse", "--precision", "fp32").exit_code == 0
    a, b = np.load(plain / "astronaut_probs.npy"), np.load(fused / "astronaut_probs.npy")
    assert np.abs(a.astype(np.float32) - b.astype(np.float32)).max() <= 1e-3
    agree = np.asarray(Image.open(plain / "astronaut.png")) == np.asarray(Image.open(fused / "astronaut.png"))
    assert agree.mean() > 0.999


def test_ext_filters_folder_files_but_not_named_files(ckpt, photos, tmp_path):
    out = tmp_path / "out"
    result = run(ckpt, photos, photos / "astronaut.png", "--out", out, "--ext", "JPG,.jpeg")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.png", "coffee.png", "rocket.png"]


@pytest.mark.parametrize("where", ["same", "inside"])
def test_output_folder_in_an_input_folder_is_refused(ckpt, photos, where):
    out = photos if where == "same" else photos / "predictions"
    before = sorted(photos.rglob("*"))
    result = run(ckpt, photos, "--out", out)
    assert result.exit_code == 2
    assert ("is or holds the input" if where == "same" else "inside the input folder") in result.output
    assert sorted(photos.rglob("*")) == before


def test_existing_outputs_are_never_overwritten_without_overwrite(ckpt, photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "camera.png").write_bytes(b"keep me")
    result = run(ckpt, photos, "--out", out)
    assert result.exit_code == 2
    assert f"{out / 'camera.png'}: output already exists; pass --overwrite" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["camera.png"]  # nothing else was written either
    assert (out / "camera.png").read_bytes() == b"keep me"
    result = run(ckpt, photos, "--out", out, "--overwrite")
    assert result.exit_code == 1  # only the two bad files
    assert Image.open(out / "camera.png").size == (45, 50)


def test_output_that_would_replace_an_input_is_refused_even_with_overwrite(ckpt, photos):
    result = run(ckpt, photos / "camera.png", "--out", photos, "--overwrite")
    assert result.exit_code == 2 and "is or holds the input" in result.output
    assert Image.open(photos / "camera.png").mode == "L"


def test_two_inputs_with_one_output_name_are_refused(ckpt, photos, tmp_path):
    photo("astronaut.png", (20, 20)).save(photos / "astronaut.jpg")
    result = run(ckpt, photos, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "would be written here" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["missing_folder"], "input not found"),
        (["empty"], "no images with extensions"),
        (["photos", "--tile", "16", "--overlap", "32"], "must be larger than the overlap"),
        (["photos", "--device", "tpu"], "unknown device"),
    ],
)
def test_user_errors_exit_2_with_one_line(ckpt, photos, tmp_path, monkeypatch, args, message):
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    result = run(ckpt, *args, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_classifier_checkpoint_is_refused(photos, tmp_path):
    ckpt = make_checkpoint(tmp_path / "seed.pt", name="seed_classifier")
    result = run(ckpt, photos, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "classifies whole images" in result.output


def test_help_states_the_overwrite_policy():
    result = CliRunner().invoke(cli, ["predict", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "checked before any is written" in text and "--overwrite" in text and "exit code is then 1" in text


def test_a_file_named_directly_and_through_its_folder_is_predicted_once(ckpt, photos, tmp_path):
    out = tmp_path / "out"
    result = run(ckpt, photos / "astronaut.png", photos, photos / "." / "astronaut.png", "--out", out, "--ext", "png")
    assert result.exit_code == 1, result.output  # the two broken .png files
    assert "4 image(s) predicted" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.png", "camera.png", "coins16.png", "logo.png"]


def test_stale_temporaries_are_removed_and_skip_existing_continues_an_interrupted_run(ckpt, photos, tmp_path):
    out = tmp_path / "out"
    inputs = [photos / "astronaut.png", photos / "coffee.jpg", photos / "camera.png"]
    assert run(ckpt, *inputs, "--out", out).exit_code == 0
    # what kill -9 leaves: one image done, one mask half-written under atomic's temporary name, one not started
    (out / "camera.png").unlink()
    (out / "coffee.png").unlink()
    stale = out / ".coffee.png.k2j_9x7q.tmp"
    stale.write_bytes(b"half a png")
    foreign = out / ".notes.txt.abc12345.tmp"  # not one of this run's outputs: left alone
    foreign.write_text("keep")
    done_before = (out / "astronaut.png").stat().st_mtime_ns
    refused = run(ckpt, *inputs, "--out", out)
    assert refused.exit_code == 2 and "already exists" in refused.output
    result = run(ckpt, *inputs, "--out", out, "--skip-existing")
    assert result.exit_code == 0, result.output
    assert "1 image(s) already predicted" in result.output and "2 image(s) predicted" in result.output
    assert "removed 1 temporary file" in result.output
    assert not stale.exists() and foreign.read_text() == "keep"
    assert (out / "astronaut.png").stat().st_mtime_ns == done_before
    assert {p.name for p in out.iterdir() if not p.name.startswith(".")} == {"astronaut.png", "coffee.png", "camera.png"}
    assert run(ckpt, *inputs, "--out", out, "--skip-existing", "--overwrite").exit_code == 2


def test_symlink_loops_are_reported_not_silently_skipped(ckpt, photos, tmp_path):
    for name in ("loop_a.png", "loop_b.png"):
        (photos / name).symlink_to(photos / name)
    out = tmp_path / "out"
    result = run(ckpt, photos, "--out", out, "--ext", "png")
    assert result.exit_code == 1 and result.output.count("a symlink loop, not an image") == 2
    assert "loop_a.png" in result.output
    assert not (out / "loop_a.png").exists()
