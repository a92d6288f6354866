"""YAML configuration (``schema``: the sections; ``load``: files, ``base:``, ``--set``; ``validate``: ranges,
resume; ``model_check``: model arguments on the meta device; ``memory``: what training needs against the machine; ``bounded_yaml``: alias-bomb-safe YAML): typed sections, one-to-one with constructor arguments.

A config file has four sections. ``model:`` is passed as ``create_model(**model)``; ``data:``,
``train:`` and ``eval:`` fill the dataclasses below. A file may name one ``base:`` file whose
values it overrides (a chain of at most two base files). ``--set key.sub=value`` overrides any value; the value is
parsed as a YAML scalar or list. Unknown keys and wrong types are one-line errors (exit 2).
"""

from segdil.config.bounded_yaml import MAX_YAML_NODES, safe_load_bounded
from segdil.config.load import config_from_dict, dump_config, load_config, parse_override
from segdil.config.memory import check_training_memory, machine_memory_bytes, training_memory
from segdil.config.model_check import WEIGHT_ARGS, check_model_args
from segdil.config.schema import (
    Config,
    DataConfig,
    EvalConfig,
    LossConfig,
    SynthConfig,
    TrainConfig,
    default_model_section,
)
from segdil.config.validate import (
    RANGES,
    RESUMABLE_KEYS,
    SHAPES,
    check_ranges,
    resume_changes,
    validate_model_section,
    with_defaults,
)

__all__ = [
    "Config",
    "DataConfig",
    "EvalConfig",
    "LossConfig",
    "MAX_YAML_NODES",
    "RANGES",
    "RESUMABLE_KEYS",
    "SHAPES",
    "SynthConfig",
    "TrainConfig",
    "WEIGHT_ARGS",
    "check_model_args",
    "check_ranges",
    "check_training_memory",
    "config_from_dict",
    "default_model_section",
    "dump_config",
    "load_config",
    "machine_memory_bytes",
    "parse_override",
    "resume_changes",
    "safe_load_bounded",
    "training_memory",
    "validate_model_section",
    "with_defaults",
]
