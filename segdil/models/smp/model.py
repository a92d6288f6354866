"""Any segmentation-models-pytorch architecture as a comparator; nothing is ever downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from segdil.models.base import SegModel
from segdil.models.common import pad_to_multiple


class SMPModel(SegModel):
    """A segmentation-models-pytorch model by architecture and encoder name.

    Args:
        in_channels: input image channels.
        num_classes: output classes.
        arch: smp architecture, e.g. ``Unet``, ``DeepLabV3``, ``FPN``, ``UnetPlusPlus``.
        encoder: smp encoder name, e.g. ``resnet18``.
        encoder_weights: None (random init) or the path of a local encoder state_dict file.
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
        if encoder_weights is not None and not Path(encoder_weights).is_file():
            raise ValueError(f"encoder_weights={encoder_weights!r}: give the path of a local weights file (nothing is downloaded), or null")
        self.net = getattr(smp, archs[arch.lower()])(encoder_name=encoder, encoder_weights=None, encoder_depth=encoder_depth, in_channels=in_channels, classes=num_classes)
        if encoder_weights is not None:
            state = torch.load(encoder_weights, map_location="cpu", weights_only=True)
            self.net.encoder.load_state_dict(state)
        self.multiple = 2**encoder_depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, self.multiple)
        return self.net(x)[..., :h, :w]
