"""Named sets of shipped configs, the pooling-sweep base, and parsing of ``--sweep-pools``."""

from __future__ import annotations

import re
from pathlib import Path

from segdil.errors import SegdilError

PRESETS: dict[str, tuple[str, ...]] = {
    # make demo: the flagship, the HDC net and FCN-pool4 at 16 channels on 64 px images, 12 s of training each
    "demo": ("demo/hdc-context", "demo/hdc", "demo/fcn-pool4"),
    # the full-resolution HDC net, FCN with 4 pools (bilinear), FCN-8s-style skips, smp Unet-resnet18
    "small-objects": ("hdc-context_synth", "hdc_synth", "fcn-pool4_synth", "fcn8s_synth", "unet-r18_synth"),
    # the same models and DeepLabV3-r18 on the hard scene (objects count only inside fields)
    "small-objects-hard": tuple(f"hard/{stem}" for stem in ("hdc-context_synth", "hdc_synth", "fcn-pool4_synth", "fcn8s_synth", "unet-r18_synth", "deeplabv3-r18_synth")),
}

# ``--sweep-pools`` trains this config with ``model.pools`` set to each P
SWEEP_BASE = "fcn-pool4_synth"
MAX_POOLS = 5


def configs_dir() -> Path:
    """The ``configs/`` folder shipped next to the package (a source checkout or editable install)."""
    path = Path(__file__).resolve().parents[2] / "configs"
    if not path.is_dir():
        raise SegdilError(
            f"{path}: the shipped configs folder is not there (is segdil installed without its repository?); "
            "pass config files instead of --preset/--sweep-pools, or install from a source checkout with pip install -e ."
        )
    return path


def shipped_config(stem: str) -> Path:
    """``configs/<stem>.yaml``; a one-line error when it is missing."""
    path = configs_dir() / f"{stem}.yaml"
    if not path.is_file():
        raise SegdilError(f"{path}: shipped config not found; the configs folder holds {', '.join(sorted(p.stem for p in configs_dir().glob('*.yaml')))}")
    return path


def preset_configs(name: str) -> list[Path]:
    """The config files of a named preset."""
    if name not in PRESETS:
        raise SegdilError(f"--preset {name!r}: unknown preset; valid presets: {', '.join(sorted(PRESETS))}")
    return [shipped_config(stem) for stem in PRESETS[name]]


def parse_pools(text: str) -> list[int]:
    """``"1..5"`` -> [1, 2, 3, 4, 5]; ``"2,4"`` -> [2, 4]; ``"3"`` -> [3]. Each P is in 1…5."""
    text = text.strip()
    pools: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        match = re.fullmatch(r"(\d+)(?:\.\.(\d+))?", part)
        if not match:
            raise SegdilError(f"--sweep-pools {text!r}: expected a range like 1..5 or a list like 1,2,4")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if last < first:
            raise SegdilError(f"--sweep-pools {text!r}: the range {part} runs backwards; write {last}..{first}")
        pools.extend(range(first, last + 1))
    bad = [p for p in pools if not 1 <= p <= MAX_POOLS]
    if bad:
        raise SegdilError(f"--sweep-pools {text!r}: P must be between 1 and {MAX_POOLS} (stride 2 to {2**MAX_POOLS}), got {bad[0]}")
    return sorted(set(pools))
