"""``segdil compare``: identical to ``python tools/compare.py``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from segdil.compare import compare
from segdil.compare.presets import PRESETS, parse_pools, preset_configs
from segdil.path_names import PathType


def command_line(ctx: click.Context) -> list[str]:
    """The command as typed when run from a shell; else (e.g. called from Python) an equivalent one."""
    program = Path(sys.argv[0]).name
    if program == "compare.py" or (program in ("segdil", "__main__.py") and sys.argv[1:2] == ["compare"]):
        return list(sys.argv)
    argv = ["segdil", "compare", *ctx.params["configs"]]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if not isinstance(param, click.Option) or value is None or value == param.default or value == ():
            continue
        for item in value if param.multiple else [value]:
            argv += [param.opts[0], str(item)]
    return argv


@click.command("compare")
@click.argument("configs", nargs=-1, type=PathType(dir_okay=False))
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default=None, help="Add a shipped set of configs: " + "; ".join(f"{k} = {', '.join(v)}" for k, v in PRESETS.items()) + ".")
@click.option("--seeds", default=3, show_default=True, type=click.IntRange(min=1), help="Train every model with train.seed = 0 … N-1.")
@click.option("--steps", default=None, type=click.IntRange(min=1), help="train.max_steps for every model.")
@click.option("--budget-s", default=None, type=click.FloatRange(min=0, min_open=True), help="Train every model for this many seconds of wall-clock (train.budget_s) instead of a step count; the learning-rate schedule decays over those seconds.")
@click.option("--match", type=click.Choice(["none", "params", "flops"]), default="none", show_default=True, help="Scale widths so every model's parameters or FLOPs are within ±10% of the first config's.")
@click.option("--sweep-pools", default=None, metavar="RANGE", help="Add FCNs with P pools (bilinear, no skips), e.g. 1..5 or 2,4.")
@click.option("--set", "overrides", multiple=True, metavar="[LABEL:]KEY=VALUE", help="Override a config value for every model (repeatable; YAML values); LABEL:KEY=VALUE only for models whose label matches the glob LABEL.")
@click.option("--out", default=None, type=PathType(file_okay=False), help="Output folder (default runs/compare-<timestamp>): new, empty, or an earlier comparison's (never one holding other files). Running the same command again continues: finished runs of the same config there are reused and an interrupted run continues from its last checkpoint.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="train.device for every model (default: as the configs say).")
@click.option("--tta", "tta", multiple=True, metavar="flip|scales=S,...", help="Also score every run with test-time augmentation (a TTA row per model): flip, scales=0.5,0.75,1,1.25; repeat to combine.")
@click.option("--cost-sizes", default=None, metavar="SIZES", help="Also measure every model's cost against image size after training, as segdil bench --sizes does (a training step at batch 2, an inference forward at batch 1; GFLOPs, peak memory with and without the memory saver, img/s, the largest whole image), e.g. 256,512,1024x512,2048x1024.")
@click.pass_context
def command(
    ctx: click.Context, configs: tuple[str, ...], preset: str | None, seeds: int, steps: int | None, budget_s: float | None, match: str, sweep_pools: str | None,
    overrides: tuple[str, ...], out: str | None, device: str | None, tta: tuple[str, ...], cost_sizes: str | None,
) -> None:
    """Train CONFIGs (and/or a --preset) alike and report object IoU against object size.

    Every model gets the same data, augmentation, steps (or wall-clock budget), batch size and seeds
    and is scored on the same validation split. Writes OUT/report.md, a self-contained
    OUT/report.html, OUT/results.json and OUT/figures/*.png; each run's checkpoints are in
    OUT/runs/<model>/seed<k>. A model's label is its config's file name without .yaml.
    The expected time is printed before the first run; Ctrl-C or SIGTERM stops the running model
    after its current step (it saves its checkpoint), says what finished, and the same command continues.
    """
    paths = [*(preset_configs(preset) if preset else []), *configs]
    pools = parse_pools(sweep_pools) if sweep_pools else []
    if not paths and not pools:
        raise click.UsageError("give config files, --preset small-objects, or --sweep-pools 1..5")
    out = out or f"runs/compare-{time.strftime('%Y%m%d-%H%M%S')}"
    # lazy: they load torch (compare --help imports this module)
    from segdil.compare.execute import sigterm_interrupts
    from segdil.compare.plan import check_out

    check_out(out, paths)
    with sigterm_interrupts():
        report = compare(paths, out=out, overrides=overrides, seeds=seeds, steps=steps, budget_s=budget_s, match=match, sweep_pools=pools, device=device, tta=tta, cost_sizes=cost_sizes, argv=command_line(ctx), echo=click.echo)
    click.echo(f"report: {report}")
