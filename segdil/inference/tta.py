"""Test-time augmentation: average the softmax probabilities of flipped and rescaled views.

``--tta flip`` adds the horizontally mirrored image; ``--tta scales=0.5,0.75,1,1.25`` predicts the
image resized by each factor (bilinear) and resizes each view's logits back to the input's exact
H×W before the softmax; the two combine (every scale, mirrored and not). Every view goes through
the one :class:`segdil.inference.engine.Predictor` (``predictor.logits``), so the memory budget,
exact tiles, precision guard and devices work as without TTA; :func:`tta_logits` is what
``predict``, ``eval --checkpoint`` and ``compare --tta`` take the argmax of.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from segdil.errors import SegdilError
from segdil.inference.engine import Predictor

# log-probabilities are floored here so that a probability of 0 stays finite
_FLOOR = 1e-12


@dataclass(frozen=True)
class TTA:
    """Which views to average: the image at each scale, and its mirror image when ``flip``."""

    flip: bool = False
    scales: tuple[float, ...] = (1.0,)

    def views(self) -> list[tuple[float, bool]]:
        return [(scale, flipped) for scale in self.scales for flipped in ((False, True) if self.flip else (False,))]

    def describe(self) -> str:
        """``flip, scales 0.5/0.75/1/1.25`` (the words the report uses)."""
        parts = ["flip"] if self.flip else []
        if self.scales != (1.0,):
            parts.append("scales " + "/".join(f"{s:g}" for s in self.scales))
        return ", ".join(parts) or "none"

    def to_dict(self) -> dict:
        return {"flip": self.flip, "scales": list(self.scales)}


def parse_tta(items: Sequence[str] | str | None) -> TTA | None:
    """``["flip", "scales=0.5,1"]`` (or ``"flip,scales=0.5,1"`` pieces) -> TTA; None when nothing is asked."""
    if items is None:
        return None
    if isinstance(items, str):
        items = [items]
    flip, scales = False, None
    for item in items:
        item = item.strip()
        if not item:
            continue
        if item == "flip":
            flip = True
        elif item.startswith("scales="):
            try:
                values = tuple(float(v) for v in item[len("scales="):].split(",") if v.strip())
            except ValueError:
                raise SegdilError(f"--tta {item!r}: scales must be numbers, e.g. scales=0.5,0.75,1,1.25") from None
            if not values or any(not 0 < v <= 8 for v in values):
                raise SegdilError(f"--tta {item!r}: give one or more scales in (0, 8], e.g. scales=0.5,0.75,1,1.25")
            scales = tuple(dict.fromkeys(values))
        else:
            raise SegdilError(f"--tta {item!r}: expected flip or scales=S1,S2,... (repeat --tta to combine them)")
    if not flip and scales is None:
        return None
    return TTA(flip=flip, scales=scales or (1.0,))


def predict_proba(predictor: Predictor, images: torch.Tensor, tta: TTA) -> torch.Tensor:
    """Softmax probabilities ``(N, C, H, W)`` (float32, CPU) of normalised images ``(N, 3, H, W)``,
    averaged over the views of ``tta``, each view predicted by ``predictor.logits``."""
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    height, width = images.shape[-2:]
    total = None
    views = tta.views()
    for scale, flipped in views:
        view = images
        if scale != 1.0:
            size = (max(1, round(height * scale)), max(1, round(width * scale)))
            view = F.interpolate(images.float(), size=size, mode="bilinear", align_corners=False)
        if flipped:
            view = view.flip(-1)
        logits = predictor.logits(view)
        if flipped:
            logits = logits.flip(-1)
        if logits.shape[-2:] != (height, width):
            logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
        probs = torch.softmax(logits, dim=1)
        total = probs if total is None else total + probs
    return total / len(views)


def predict_log_proba(predictor: Predictor, images: torch.Tensor, tta: TTA) -> torch.Tensor:
    """The log of :func:`predict_proba`: a drop-in for logits (its softmax is the averaged probabilities, its argmax the prediction)."""
    return predict_proba(predictor, images, tta).clamp_min(_FLOOR).log()


def tta_logits(predictor: Predictor, images: torch.Tensor, tta: TTA | None) -> torch.Tensor:
    """What every command takes the argmax (and ``--probs`` the softmax) of: ``predictor.logits(images)``,
    or with ``tta`` :func:`predict_log_proba`."""
    return predictor.logits(images) if tta is None else predict_log_proba(predictor, images, tta)
