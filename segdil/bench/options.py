"""The options of ``segdil bench`` as one object, and the one function the command calls.

:class:`BenchOptions` holds what the command parsed, field for field; :func:`run_bench` checks the
outputs, resolves the models and hands the same object to the single-variant bench
(:func:`segdil.bench.run.bench_from_options`) or the size sweep
(:func:`segdil.bench.sizes.sweep_from_options`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from segdil.errors import SegdilError, shown
from segdil.output_paths import check_output
from segdil.path_names import check_path_name


@dataclass(frozen=True)
class BenchOptions:
    """Every option of ``segdil bench`` (``segdil bench --help`` says what each does)."""

    models: tuple[str, ...] = ()
    size: str = "512"
    sizes: Optional[str] = None
    max_memory_gb: Optional[float] = None
    plot_path: Optional[str] = None
    batch: int = 16
    train: bool = True
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = True
    compile_: bool = False
    compile_backend: str = "inductor"
    fuse: Optional[bool] = None
    memory_saver: bool = False
    steps: Optional[int] = None
    warmup: Optional[int] = None
    matrix: bool = False
    variants: Optional[str] = None
    isolate_memory: bool = True
    with_data: bool = True
    threads: Optional[int] = None
    conv_ceiling: bool = False
    vs_ceiling: bool = False
    conv_channels: Optional[int] = None
    predict: Optional[bool] = None
    predict_images: int = 3
    predict_rounds: int = 3
    checkpoint: Optional[str] = None
    json_path: Optional[str] = None
    overrides: tuple[str, ...] = ()
    overwrite: bool = False

    @property
    def mode(self) -> str:
        return "train" if self.train else "infer"


def _is_config(model: str) -> bool:
    check_path_name(model, "--model")
    return Path(model).suffix in (".yaml", ".yml") or Path(model).is_file()


def resolve_model(model: str | None, overrides: tuple[str, ...]):
    """A YAML path loads that config; a registered name starts from the defaults with ``model.name``;
    None is the default config's model."""
    from segdil.config import load_config
    from segdil.models import MODELS

    if model is None:
        return load_config(None, overrides)
    if _is_config(model):
        return load_config(model, overrides)
    if model not in MODELS:
        raise SegdilError(f"--model {shown(model)}: neither a config file nor a model name; give a .yaml path or one of {', '.join(sorted(MODELS))}")
    return load_config(None, (f"model.name={model}", *overrides))


def model_label(model: str | None) -> str:
    """A config file's stem or the model name, as the sweep's rows name it."""
    if model is None:
        return "default"
    return Path(model).stem if _is_config(model) else model


def run_bench(options: BenchOptions) -> str:
    """What ``segdil bench`` does: the outputs checked first (never an input: a --model config or the
    --checkpoint), then the sweep (``--sizes``) or one bench; the printed text is returned."""
    inputs: list[Any] = [*options.models, options.checkpoint]
    check_output(options.json_path, "--json", inputs, options.overwrite)
    if options.sizes is not None:
        from segdil.bench.sizes import sweep_from_options

        check_output(options.plot_path, "--plot", [*inputs, options.json_path], options.overwrite)
        models = [(model_label(m), resolve_model(m, options.overrides)) for m in options.models or (None,)]
        return sweep_from_options(models, options)
    if len(options.models) > 1 or options.max_memory_gb is not None or options.plot_path is not None:
        raise SegdilError("--model given more than once, --max-memory-gb and --plot: only with --sizes")
    from segdil.bench.run import bench_from_options

    cfg = None if options.conv_ceiling else resolve_model(options.models[0] if options.models else None, options.overrides)
    return bench_from_options(cfg, options)
