"""End-to-end speed of ``segdil predict`` beside the naive forward, in one process.

The figure users feel is not the model's forward but decode → model → mask PNG on disk. This
module writes ``images`` photos of ``height`` x ``width`` (matplotlib's sample photograph
``grace_hopper.jpg``, resized and varied, as JPEG; procedurally generated when matplotlib is
absent), a checkpoint of the model after a few SGD steps on synthetic data (so BatchNorm
statistics are not trivial), and then times in rounds, one of each per round:

* ``naive``: one fp32, NCHW, unfused, eager whole-image forward of one (already decoded) image,
  model only — the reference;
* ``predict``: :func:`segdil.inference.predict_files.predict_files` over all images with the given
  options, end to end (reading, decoding, forward, argmax, mask PNG written), per image.

Ratios come from the same rounds, so load from other processes falls on both alike. Pixel
agreement: predict's masks against the argmax of the naive forward on every image.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from segdil.inference.engine import InferenceOptions


def sample_photos(folder: Path, height: int, width: int, count: int, seed: int = 0) -> list[Path]:
    """``count`` JPEG photos of ``height`` x ``width`` in ``folder``: the matplotlib sample photo,
    resized, flipped and shifted in colour per image; procedural images when it is missing."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    try:
        import matplotlib.cbook as cbook

        with cbook.get_sample_data("grace_hopper.jpg") as f:
            base = Image.open(f).convert("RGB")
            base.load()
    except Exception:  # no matplotlib sample data: smooth procedural colours
        ys, xs = np.mgrid[0:256, 0:256]
        base = Image.fromarray(np.stack([(xs + ys) // 2, 128 + 60 * np.sin(xs / 9), 128 + 60 * np.cos(ys / 13)], -1).astype(np.uint8))
    paths = []
    for index in range(count):
        image = base.transpose(Image.FLIP_LEFT_RIGHT) if index % 2 else base
        array = np.asarray(image.resize((width, height), Image.BICUBIC)).astype(np.int16)
        array = np.clip(array + rng.integers(-20, 21, size=3), 0, 255).astype(np.uint8)
        path = folder / f"photo{index}.jpg"
        Image.fromarray(array).save(path, quality=92)
        paths.append(path)
    return paths


def briefly_trained(model_args: dict[str, Any], steps: int = 4, size: int = 64, seed: int = 0) -> torch.nn.Module:
    """The model after ``steps`` SGD steps (batch 4) on the synthetic benchmark, in eval mode."""
    import torch.nn.functional as F

    from segdil.config import DataConfig, SynthConfig
    from segdil.data.synth import SyntheticSegmentation
    from segdil.models import create_model_quietly

    torch.manual_seed(seed)
    model = create_model_quietly(**model_args)
    num_classes = int(model_args.get("num_classes") or model(torch.zeros(2, 3, size, size)).shape[1])  # 2: BatchNorm on pooled features needs more than one value in training mode
    data = DataConfig()
    dataset = SyntheticSegmentation("train", SynthConfig(n_train=4 * steps, size=size, max_object=size // 2, seed=seed), mean=data.mean, std=data.std)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for step in range(steps):
        images, masks = zip(*(dataset[4 * step + i] for i in range(4)))
        target = torch.stack(masks)
        target = torch.where(target == 255, target, target % num_classes)
        loss = F.cross_entropy(model(torch.stack(images)), target, ignore_index=255)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def _reference_masks(model, photos, mean, std, dev: torch.device) -> list:
    """The naive fp32 whole-image argmax of every photo."""
    from segdil.data.io import load_image
    from segdil.data.transforms import to_tensor

    masks = []
    with torch.no_grad():
        for path in photos:
            x = to_tensor(load_image(path), mean, std)[None].to(dev)
            masks.append(model(x).argmax(1)[0].cpu().numpy())
    return masks


def bench_predict(
    model_args: dict[str, Any],
    height: int,
    width: int,
    *,
    images: int = 3,
    rounds: int = 3,
    device: str = "cpu",
    predict_options: Optional[InferenceOptions] = None,
    train_steps: int = 4,
    workdir: Optional[Path] = None,
    checkpoint: Optional[str | Path] = None,
) -> dict[str, Any]:
    """Naive whole-image forward vs ``predict`` end to end (see the module doc); JSON-ready.
    ``checkpoint``: use this model instead of ``model_args`` trained ``train_steps`` steps."""
    from segdil.checkpoint import save_checkpoint
    from segdil.config import Config
    from segdil.data.io import load_image, load_mask
    from segdil.data.transforms import to_tensor
    from segdil.device import resolve_device
    from segdil.inference.predict_files import predict_files

    dev = resolve_device(device)
    options = predict_options or InferenceOptions()
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        root = Path(tmp)
        cfg = Config()
        if checkpoint is not None:
            from segdil.checkpoint import checkpoint_config, load_checkpoint, model_from_checkpoint

            ckpt = Path(checkpoint)
            loaded = load_checkpoint(ckpt)
            args, model, cfg = dict(loaded["model_args"]), model_from_checkpoint(loaded), checkpoint_config(loaded)
            model.eval()
        else:
            args = {k: v for k, v in model_args.items() if v is not None}
            model = briefly_trained(args, steps=train_steps)
            ckpt = root / "model.pt"
            save_checkpoint({"model_args": args, "model": model.state_dict(), "config": cfg.to_dict()}, ckpt)
        photos = sample_photos(root / "photos", height, width, images)
        mean, std = cfg.data.mean, cfg.data.std
        model = model.to(dev)
        reference_masks = _reference_masks(model, photos, mean, std, dev)  # also warms the naive path up
        predict_files(ckpt, photos, root / "warm", options, device=str(dev), progress=False)  # warm-up: caches, compile
        naive_s, predict_s = [], []
        for round_index in range(rounds):
            x = to_tensor(load_image(photos[round_index % len(photos)]), mean, std)[None].to(dev)
            start = time.perf_counter()
            with torch.no_grad():
                model(x)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            naive_s.append(time.perf_counter() - start)
            out = root / f"out{round_index}"
            start = time.perf_counter()
            summary = predict_files(ckpt, photos, out, options, device=str(dev), progress=False)
            predict_s.append((time.perf_counter() - start) / len(photos))
        agree = [float((load_mask(out / f"{p.stem}.png") == ref).mean()) for p, ref in zip(photos, reference_masks)]
    ratios = [n / p for n, p in zip(naive_s, predict_s)]
    return {
        "model": args,
        "checkpoint": str(checkpoint) if checkpoint is not None else f"trained {train_steps} SGD steps on synthetic data",
        "size": f"{width}x{height}",
        "images": images,
        "rounds": rounds,
        "predict_options": asdict(options),
        "naive_s_per_image": [round(v, 3) for v in naive_s],
        "predict_s_per_image": [round(v, 3) for v in predict_s],
        "naive_img_per_s": round(1 / statistics.median(naive_s), 4),
        "predict_img_per_s": round(1 / statistics.median(predict_s), 4),
        "speedup_per_round": [round(r, 3) for r in ratios],
        "speedup": round(statistics.median(ratios), 3),
        "inference": summary.inference,
        "fp32_fallbacks_per_round": summary.fp32_fallbacks,
        "pixel_agreement_min": round(min(agree), 6),
        "pixel_agreement_mean": round(sum(agree) / len(agree), 6),
    }


def format_predict(result: dict[str, Any]) -> str:
    return (
        f"predict end to end ({result['images']} JPEG photos {result['size']}, decode -> mask PNG on disk, {result['rounds']} rounds): "
        f"{result['predict_img_per_s']:.3f} img/s against {result['naive_img_per_s']:.3f} img/s for one naive fp32 NCHW whole-image forward (model only): "
        f"{result['speedup']:.2f}x (rounds {', '.join(f'{r:.2f}' for r in result['speedup_per_round'])}); "
        f"pixel agreement with the naive argmax {100 * result['pixel_agreement_min']:.3f} % (worst image); "
        f"predict ran {result['inference']}, {result['fp32_fallbacks_per_round']} of {result['images']} images run in fp32 by the bf16 guard"
    )
