"""``encoder_weights`` of smp models: a name smp knows (downloaded when online, cache first) or a local file.

Offline, a name whose weights are not in the Hugging Face cache fails at once with one line that
gives the URL to fetch elsewhere and the ``encoder_weights: /path/file`` setting that uses it.

Built on the meta device (training checks its model arguments so, before its work dir exists) the
name or file is checked just the same, but nothing is downloaded: a name gives random weights and
a file is read (``weights_only``) and matched against the encoder's tensors by name and shape.
"""

from __future__ import annotations

import os
import pickle
import socket
import threading
from pathlib import Path
from typing import Optional

from segdil.file_sniff import text_start

HUB_HOST = "huggingface.co"


def online(host: str = HUB_HOST, timeout: float = 3.0) -> bool:
    """Whether ``host`` answers on port 443 within ``timeout`` seconds in all, name lookup included
    (a resolver that never answers does not hang it); False when HF_HUB_OFFLINE is set."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    answer: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                answer.append(True)
        except OSError:
            answer.append(False)

    thread = threading.Thread(target=probe, daemon=True, name="segdil-online-probe")
    thread.start()
    thread.join(timeout)
    return bool(answer and answer[0])


def building_on_meta() -> bool:
    """Whether the model is being built on the meta device (a check: nothing may be downloaded)."""
    import torch

    return torch.get_default_device().type == "meta"


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
        if path.stat().st_size == 0:
            raise ValueError(f"encoder_weights={weights!r}: an empty file (0 bytes), not a weights file")
        return None, path
    if path.is_dir():
        raise ValueError(f"encoder_weights={weights!r}: a folder, not a weights file; name the .safetensors or .pth file inside it")
    names = pretrained_names(encoder)
    if weights not in names:
        known = f"; names smp knows for {encoder}: {', '.join(names)}" if names else ""
        raise ValueError(f"encoder_weights={weights!r}: no such local weights file{known}")
    import segmentation_models_pytorch as smp

    settings = smp.encoders.encoders[encoder]["pretrained_settings"][weights]
    repo, revision = settings["repo_id"], settings.get("revision") or "main"
    if _cached(repo, revision) or online():
        return (None if building_on_meta() else weights), None
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
    """A state_dict from ``.safetensors`` or a torch file (``weights_only``); ValueError (one line)
    for a file that is neither, or a pickle that holds code (never run)."""
    import torch

    where = f"encoder_weights={str(path)!r}"
    with open(path, "rb") as f:
        head = f.read(512)
    text = None if path.suffix == ".safetensors" or head.startswith((b"PK\x03\x04", b"\x80")) else text_start(head)
    if text is not None:
        raise ValueError(f"{where}: {text}, not a weights file; use a .safetensors or .pth state_dict")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's text advises weights_only=False, i.e. running the file's code: never for a weights file
        raise ValueError(f"{where}: not a weights file (it holds Python objects other than tensors, which segdil never loads); use a .safetensors or plain state_dict file") from None
    except Exception as exc:  # torch and safetensors raise several types for truncated or foreign files
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        raise ValueError(f"{where}: not a readable weights file ({type(exc).__name__}: {first}); use a .safetensors or .pth state_dict") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{where}: not a state_dict (a mapping of tensor names to tensors)")
    return state


def load_encoder_weights(encoder, path: Path, encoder_name: str) -> None:
    """Load the state_dict in ``path`` into ``encoder``; ValueError (one line) when it was saved from
    another encoder: how many names are missing, unexpected or of another shape, with one of each."""
    state = load_weights_file(path)
    own = encoder.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    other_shape = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or other_shape:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0][:60]!r})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0][:60]!r})")
        if other_shape:
            k = other_shape[0]
            parts.append(f"{len(other_shape)} of another shape (e.g. {k[:60]!r}: {tuple(state[k].shape)} for {tuple(own[k].shape)})")
        raise ValueError(
            f"encoder_weights={str(path)[-120:]!r}: these weights do not fit the {encoder_name} encoder: {'; '.join(parts)} "
            f"tensor names; give weights saved from a {encoder_name} encoder (encoder.state_dict())"
        )
    encoder.load_state_dict(state)
