"""Any segmentation-models-pytorch architecture as a comparator; pretrained encoders by name (online) or local file."""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from segdil.models.base import SegModel
from segdil.models.common import pad_to_multiple
from segdil.models.smp.weights import load_encoder_weights, resolve_encoder_weights


class SMPModel(SegModel):
    """A segmentation-models-pytorch model by architecture and encoder name.

    Args:
        in_channels: input image channels.
        num_classes: output classes.
        arch: smp architecture, e.g. ``Unet``, ``DeepLabV3``, ``FPN``, ``UnetPlusPlus``.
        encoder: smp encoder name, e.g. ``resnet18``.
        encoder_weights: None (random init), a name smp knows (``imagenet``; fetched when online,
            one clear error offline) or the path of a local encoder state_dict file (.pth, .safetensors).
        encoder_depth: encoder stages; the input is padded to a multiple of 2^depth.
    """

    @classmethod
    def tiny_args(cls) -> dict[str, Any]:
        return dict(arch="Unet", encoder="resnet18")

    @property
    def input_multiple(self) -> int:
        return self.multiple

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 4,
        arch: str = "Unet",
        encoder: str = "resnet18",
        encoder_weights: Optional[str] = None,
        encoder_depth: int = 5,
    ):
        super().__init__()
        import segmentation_models_pytorch as smp

        archs = {name.lower(): name for name in dir(smp) if isinstance(getattr(smp, name), type) and issubclass(getattr(smp, name), nn.Module) and name[0].isupper()}
        archs.pop("segmentationmodel", None)
        if arch.lower() not in archs:
            raise ValueError(f"smp arch {arch!r} is unknown; valid: {', '.join(sorted(archs.values()))}")
        if encoder not in smp.encoders.get_encoder_names():
            raise ValueError(f"smp encoder {encoder!r} is unknown; see segmentation_models_pytorch.encoders.get_encoder_names()")
        name, weights_file = resolve_encoder_weights(encoder, encoder_weights)
        try:
            self.net = getattr(smp, archs[arch.lower()])(encoder_name=encoder, encoder_weights=name, encoder_depth=encoder_depth, in_channels=in_channels, classes=num_classes)
        except (OSError, RuntimeError) as exc:  # a download that failed half-way
            raise ValueError(f"encoder_weights={encoder_weights!r}: could not fetch the weights ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})") from None
        if weights_file is not None:
            load_encoder_weights(self.net.encoder, weights_file, encoder)
        self.multiple = 2**encoder_depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, self.multiple)
        return self.net(x)[..., :h, :w]
