"""The comparison report: ``report.md`` (figures beside it) and a self-contained ``report.html``.

Both are rendered from one list of blocks (headings, paragraphs, tables, figures, code), so they
always say the same thing; the HTML embeds every PNG as base64 and needs no other file.
"""

from __future__ import annotations

import base64
import datetime
import html
import os
import platform
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, Union

from segdil.atomic import write_text
from segdil.device import cpu_name, native_bf16

# --------------------------------------------------------------------------- blocks


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str  # `code` spans allowed


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    align: str = ""  # one letter per column, l or r (default: first column left, the rest right)


@dataclass
class Figure:
    path: Path
    caption: str


@dataclass
class Code:
    text: str


@dataclass
class Bullets:
    items: list[str]  # `code` spans and **bold** allowed


Block = Union[Heading, Para, Table, Figure, Code, Bullets]

# the main table: column title -> metric key (None for the cost columns)
METRIC_COLUMNS = {"mIoU": "mIoU", "small-object IoU": "small_object_iou", "iIoU": "iIoU", "boundary IoU": "boundary_iou", "worst-10% mIoU": "worst_miou_10pct"}
COST_COLUMNS = ["params", "GFLOPs/MP", "train img/s", "peak memory", "steps"]


# --------------------------------------------------------------------------- formatting


def fmt_stat(node: Any, digits: int = 3, seeds: int | None = None) -> str:
    """``0.512 ± 0.013`` (std over seeds), ``0.512`` for one seed, ``–`` where undefined;
    ``(n=2)`` when fewer seeds than run gave a value."""
    if not isinstance(node, dict) or node.get("mean") is None:
        return "–"
    text = f"{node['mean']:.{digits}f}"
    if node.get("std") is not None:
        text += f" ± {node['std']:.{digits}f}"
    if seeds is not None and node.get("n", seeds) < seeds:
        text += f" (n={node['n']})"
    return text


def fmt_steps(node: Any) -> str:
    """Steps per run: one number when every seed ran as many (always, unless ``--budget-s``)."""
    if not isinstance(node, dict) or node.get("mean") is None:
        return "–"
    return f"{node['mean']:.0f}" if not node.get("std") else fmt_stat(node, 0)


def fmt_count(value: float | int | None) -> str:
    if value is None:
        return "–"
    value = float(value)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value:.0f}"


def fmt_bytes(node: Any, seeds: int | None = None) -> str:
    if not isinstance(node, dict) or node.get("mean") is None:
        return "–"
    mib = {k: (v / 2**20 if isinstance(v, (int, float)) and k in ("mean", "std") else v) for k, v in node.items()}
    return fmt_stat(mib, 0, seeds) + " MiB"


# --------------------------------------------------------------------------- environment


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def environment(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The command line, the machine, the versions and the date, taken when the comparison starts."""
    import torch

    import segdil

    argv = list(sys.argv if argv is None else argv)
    if argv and Path(argv[0]).name in ("segdil", "__main__.py"):
        argv[0] = "segdil"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "command": shlex.join(argv),
        "cwd": str(Path.cwd()),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_name(),
            "cpu_class": cpu_class(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "gpu": gpu,
            "gpu_count": torch.cuda.device_count() if gpu else 0,
            "platform": platform.platform(),
            "load_average": load,
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "segmentation-models-pytorch": _version("segmentation-models-pytorch"),
            "segdil": segdil.__version__,
            "numpy": _version("numpy"),
            "albumentations": _version("albumentations"),
            "opencv-python-headless": _version("opencv-python-headless"),
        },
    }


# --------------------------------------------------------------------------- words for the report's content


def cpu_class() -> str:
    """The vector instructions torch's CPU kernels use and whether bf16 is native: the class speed figures depend on."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    return f"{capability}, " + ("native bf16" if native_bf16(torch.device("cpu")) else "no native bf16")


def cpu_words(machine: dict[str, Any]) -> str:
    """``AMD EPYC, 2 cores, AVX512, native bf16`` (the class where results.json has it)."""
    return f"{machine['cpu']}, {machine['cores']} cores" + (f", {machine['cpu_class']}" if machine.get("cpu_class") else "")


def device_words(results: dict[str, Any]) -> str:
    names = sorted({f"{r.get('device_name', r.get('device'))}" for r in results["runs"]})
    threads = sorted({r.get("torch_threads") for r in results["runs"] if r.get("torch_threads")})
    machine = results["environment"]["machine"]
    words = ", ".join(n if n != "cpu" else f"CPU ({cpu_words(machine)})" for n in names)
    if names == ["cpu"] and threads:
        words += f", {'/'.join(map(str, threads))} torch thread(s)"
    return words


def _crop_words(data: dict[str, Any]) -> str:
    if data.get("crop_size") != "auto":
        return f"training crops {data['crop_size']} px"
    from segdil.config import config_from_dict
    from segdil.data.transforms import resolve_crop_size

    return f"training crops {resolve_crop_size(config_from_dict({'data': data}).data)} px (crop_size: auto)"


def data_words(settings: dict[str, Any]) -> str:
    data = settings["data"]
    if data.get("root") is None:
        s = data["synth"]
        if s.get("scene") == "street":
            return (
                f"the built-in street benchmark ({s['n_train']} training and {s['n_val']} validation scenes of {2 * s['size']}×{s['size']} px, "
                f"synth seed {s['seed']}), {_crop_words(data)}"
            )
        return (
            f"the built-in synthetic benchmark ({s['n_train']} training and {s['n_val']} validation images of {s['size']}×{s['size']} px, "
            f"objects {s['min_object']:g}–{s['max_object']:g} px, synth seed {s['seed']}), {_crop_words(data)}"
        )
    return f"the {data.get('format') or 'folder'} dataset `{data['root']}` (train split `{data['train_split']}`, validation split `{data['val_split']}`), {_crop_words(data)}"


def schedule_words(settings: dict[str, Any]) -> str:
    if settings.get("budget_s") is not None:
        steps = settings["max_steps"]
        limit = f", at most {steps} steps" if steps < 10**9 else " (the learning-rate schedule is computed for 10^9 steps, so it barely decays)"
        return f"the same wall-clock budget of {settings['budget_s']:g} s of training each{limit}"
    return f"{settings['max_steps']} steps each"


def build_blocks(results: dict[str, Any], figures: dict[str, Path]) -> list[Block]:
    """The report, top to bottom."""
    from segdil.compare.report_sections import SECTIONS

    return [block for section in SECTIONS for block in section(results, figures)]


# --------------------------------------------------------------------------- rendering


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _alignment(table: Table) -> str:
    return table.align or "l" + "r" * (len(table.headers) - 1)


def render_markdown(blocks: list[Block], base: Path) -> str:
    """Markdown with figures linked relative to ``base`` (the report's folder)."""
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append("#" * block.level + " " + block.text)
        elif isinstance(block, Para):
            out.append(block.text)
        elif isinstance(block, Table):
            align = _alignment(block)
            out.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
            out.append("|" + "|".join(" ---: " if a == "r" else " --- " for a in align) + "|")
            out.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows)
        elif isinstance(block, Figure):
            rel = os.path.relpath(block.path, base).replace(os.sep, "/")
            out.append(f"![{block.caption}]({rel})\n\n*{block.caption}*")
        elif isinstance(block, Code):
            out.append("```\n" + block.text + "\n```")
        elif isinstance(block, Bullets):
            out.extend(f"- {item}" for item in block.items)
        out.append("")
    return "\n".join(out)


def _inline_html(text: str) -> str:
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(f"<code>{html.escape(p[1:-1])}</code>" if p.startswith("`") and p.endswith("`") and len(p) > 1 else _bold_html(p) for p in parts)


def _bold_html(text: str) -> str:
    pieces = text.split("**")
    if len(pieces) % 2 == 0:  # an unpaired ** stays as it is
        return html.escape(text)
    return "".join(f"<strong>{html.escape(p)}</strong>" if i % 2 else html.escape(p) for i, p in enumerate(pieces))


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; }
th { background: #f3f3f3; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #555; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
code { background: #f3f3f3; padding: 0 0.2em; }
"""


def render_html(blocks: list[Block], title: str) -> str:
    """One self-contained HTML page: every figure embedded as a base64 PNG."""
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{html.escape(title)}</title>", f"<style>{STYLE}</style></head><body>"]
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            out.append(f"<p>{_inline_html(block.text)}</p>")
        elif isinstance(block, Table):
            align = _alignment(block)
            out.append("<table><thead><tr>" + "".join(f'<th class="{a}">{html.escape(h)}</th>' for h, a in zip(block.headers, align)) + "</tr></thead><tbody>")
            out.extend("<tr>" + "".join(f'<td class="{a}">{_inline_html(c)}</td>' for c, a in zip(row, align)) + "</tr>" for row in block.rows)
            out.append("</tbody></table>")
        elif isinstance(block, Figure):
            data = base64.b64encode(Path(block.path).read_bytes()).decode("ascii")
            out.append(f'<figure><img alt="{html.escape(block.caption)}" src="data:image/png;base64,{data}"><figcaption>{_inline_html(block.caption)}</figcaption></figure>')
        elif isinstance(block, Code):
            out.append(f"<pre><code>{html.escape(block.text)}</code></pre>")
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{_inline_html(item)}</li>" for item in block.items) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_report(results: dict[str, Any], figures: dict[str, Path], out: Path) -> Path:
    """Write ``out/report.md`` and ``out/report.html``; returns the path of report.md."""
    out = Path(out)
    blocks = build_blocks(results, figures)
    title = blocks[0].text if blocks and isinstance(blocks[0], Heading) else "segdil compare"
    write_text(out / "report.html", render_html(blocks, title))
    write_text(out / "report.md", render_markdown(blocks, out))
    return out / "report.md"
