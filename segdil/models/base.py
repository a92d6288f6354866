"""What every model family says about itself, on its class (like smp's ``output_stride``).

Code outside ``segdil/models/`` never tests a model's name or type: it reads these attributes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn


class SegModel(nn.Module):
    """Base class of every registered model.

    Class attributes (override in a family where they differ):
        is_classifier: the model outputs ``(N, num_classes)`` instead of ``(N, num_classes, H, W)``.
        supports_memory_saver: the constructor takes ``memory_saver="checkpoint"``.
        width_args: constructor arguments that hold channel counts (``--match`` scales them).
        min_input_size: the smallest H and W the model accepts.
        full_resolution_path: attribute names of the submodules on the path from input to head
            that must never pool, stride or resample (checked by the test suite; empty: none).

    Tiled inference (``segdil.inference.engine``) reads ``receptive_field_radius`` and, for models
    with image-level context, the ``image_context``/``forward_with_context`` pair.
    """

    is_classifier: ClassVar[bool] = False
    supports_memory_saver: ClassVar[bool] = False
    width_args: ClassVar[tuple[str, ...]] = ()
    min_input_size: ClassVar[int] = 1
    full_resolution_path: ClassVar[tuple[str, ...]] = ()

    @property
    def input_multiple(self) -> int:
        """The multiple ``forward`` pads H and W up to internally (1: none)."""
        return 1

    @property
    def receptive_field_radius(self) -> int | None:
        """An upper bound on how far (pixels, per side) an output pixel's logits reach into the
        input, not counting ``image_context``; None: unknown or unbounded. Tiles with this much
        context on every inner side give exactly the whole-image logits."""
        return None

    def image_context(self, images: Any) -> Any:
        """Optional hook for models with image-level context: computed once per image (e.g. on the
        whole image at the context stream's resolution) and passed to ``forward_with_context``
        for every tile, so tiles see the context of the whole image. None (the default): no
        such context; tiles run ``forward``."""
        return None

    def forward_with_context(self, x: Any, context: Any, offset: tuple[int, int], image_size: tuple[int, int]) -> Any:
        """Logits of the tile ``x`` of the image whose ``image_context`` is ``context``: the tile's
        top-left pixel is at ``offset`` (row, column) of that image, whose size (as the tiler
        padded it) is ``image_size`` (H, W). Must equal the matching crop of ``forward(whole
        image)`` at least ``receptive_field_radius`` pixels from the tile's inner borders. The
        tiler calls it once per tile."""
        return self(x)

    @classmethod
    def tiny_args(cls) -> dict[str, Any]:
        """Constructor arguments (without ``num_classes``) of a small instance for fast tests."""
        return {}

    @classmethod
    def rf_stack_args(cls, model_args: dict[str, Any]) -> dict[str, Any] | None:
        """``segdil.rf.analyze_stack`` arguments of the dilated stack this config builds, or
        None when the family has no analytic receptive field."""
        return None
