"""``encoder_weights`` of smp models: a name smp knows (downloaded when online, cache first) or a local file.

Offline, a name whose weights are not in the Hugging Face cache fails at once with one line that
gives the URL to fetch elsewhere and the ``encoder_weights: /path/file`` setting that uses it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Optional

HUB_HOST = "huggingface.co"


def online(host: str = HUB_HOST, timeout: float = 3.0) -> bool:
    """Whether ``host`` answers on port 443 within ``timeout`` seconds (False when HF_HUB_OFFLINE is set)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def pretrained_names(encoder: str) -> list[str]:
    import segmentation_models_pytorch as smp

    entry = smp.encoders.encoders.get(encoder)
    return sorted(entry["pretrained_settings"]) if entry else []


def resolve_encoder_weights(encoder: str, weights: Optional[str]) -> tuple[Optional[str], Optional[Path]]:
    """(name for smp, local file): exactly one is set, or neither for random initialisation.

    Raises ValueError (one line) for an unknown name, a missing file, or a name that cannot be fetched offline.
    """
    if weights is None:
        return None, None
    path = Path(weights).expanduser()
    if path.is_file():
        return None, path
    names = pretrained_names(encoder)
    if weights not in names:
        known = f"; names smp knows for {encoder}: {', '.join(names)}" if names else ""
        raise ValueError(f"encoder_weights={weights!r}: no such local weights file{known}")
    import segmentation_models_pytorch as smp

    settings = smp.encoders.encoders[encoder]["pretrained_settings"][weights]
    repo, revision = settings["repo_id"], settings.get("revision") or "main"
    if _cached(repo, revision) or online():
        return weights, None
    url = f"https://{HUB_HOST}/{repo}/resolve/{revision}/model.safetensors"
    raise ValueError(
        f"encoder_weights={weights!r}: offline and the {encoder} {weights} weights are not cached; download {url} "
        f"on a machine with network and set encoder_weights: /path/to/model.safetensors (a local weights file)"
    )


def _cached(repo: str, revision: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo, "model.safetensors", revision=revision)
        return isinstance(found, str) and Path(found).is_file()
    except Exception:  # an old or missing huggingface_hub: treat as not cached
        return False


def load_weights_file(path: Path) -> dict:
    """A state_dict from ``.safetensors`` or a torch file (``weights_only``)."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state
