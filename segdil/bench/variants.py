"""The switches ``segdil bench`` times: a *variant* is a set of optimisations on top of the naive
form (fp32, NCHW, eager, unfused)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from segdil.errors import SegdilError

MODES = ("train", "infer")
FLAGS = ("channels_last", "amp", "compile", "fuse", "memory_saver")
TRAIN_MATRIX = (
    "naive",
    "channels_last",
    "amp",
    "channels_last+amp",
    "channels_last+amp+compile",
    "channels_last+amp+memory_saver",
    "channels_last+amp+compile+memory_saver",
)
INFER_MATRIX = (
    "naive",
    "channels_last",
    "amp",
    "fuse",
    "channels_last+amp",
    "channels_last+amp+fuse",
    "channels_last+amp+fuse+compile",
)


@dataclass(frozen=True)
class Variant:
    """Which optimisations are on; the name joins them with ``+`` (``naive`` when none is)."""

    channels_last: bool = False
    amp: bool = False
    compile: bool = False
    fuse: bool = False
    memory_saver: bool = False

    @property
    def name(self) -> str:
        return "+".join(flag for flag in FLAGS if getattr(self, flag)) or "naive"

    @classmethod
    def parse(cls, name: str) -> "Variant":
        """``"channels_last+amp"`` -> ``Variant(channels_last=True, amp=True)``."""
        name = name.strip()
        if name == "naive":
            return cls()
        parts = [p.strip() for p in name.split("+")]
        unknown = [p for p in parts if p not in FLAGS]
        if unknown or not parts:
            raise SegdilError(f"variant {name!r}: unknown switch {', '.join(unknown) or '(empty)'}; join naive or {', '.join(FLAGS)} with '+'")
        return cls(**{p: True for p in parts})


def matrix_variants(mode: str, model_name: str) -> list[str]:
    """The default matrix: the naive baseline, each optimisation alone, then combined (the memory
    saver only where the model family has one)."""
    from segdil.models import model_class

    names = TRAIN_MATRIX if mode == "train" else INFER_MATRIX
    return [n for n in names if model_class(model_name).supports_memory_saver or "memory_saver" not in n]


def variant_model_args(model_args: dict[str, Any], variant: Variant) -> dict[str, Any]:
    """The ``create_model`` kwargs of a variant: the memory saver is a model argument, on exactly
    when the variant asks for it (a config's ``memory_saver`` does not leak into a plain variant)."""
    from segdil.models import MODELS, model_class

    args = dict(model_args)
    has_saver = model_class(args.get("name")).supports_memory_saver
    if variant.memory_saver and not has_saver:
        with_saver = ", ".join(n for n, cls in MODELS.items() if cls.supports_memory_saver)
        raise SegdilError(f"--memory-saver: model {args.get('name')!r} has no memory saver; only {with_saver} have one (activation checkpointing)")
    if has_saver:
        args["memory_saver"] = "checkpoint" if variant.memory_saver else "none"
    return args


def check_variants(variants: Sequence[Variant], mode: str, model_args: dict[str, Any]) -> None:
    """Every check on the chosen variants, in one place: known mode, each variant once, folding
    only for inference, the memory saver only where the model family has one."""
    if mode not in MODES:
        raise SegdilError(f"mode {mode!r}: use train or infer")
    if len({v.name for v in variants}) != len(variants):
        raise SegdilError(f"variants {', '.join(v.name for v in variants)}: each variant may appear once")
    for v in variants:
        variant_model_args(model_args, v)
        if v.fuse and mode == "train":
            raise SegdilError(f"variant {v.name}: BatchNorm folding is for inference only; use --infer or --no-fuse")
