"""Pictures of receptive fields: path-count heatmaps with holes marked, and gradient ERF maps.

Figures are drawn with matplotlib (Agg) and written atomically (temporary file, rename).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segdil.atomic import save_figure
from segdil.rf.analysis import RFReport, describe_stack

MAX_DRAWN_RF = 1025
HOLE_RGBA = (0.85, 0.1, 0.1, 1.0)


def _figure(ncols: int, width: float = 5.2, height: float = 4.8):
    from matplotlib.figure import Figure  # no pyplot: no global backend state, Agg renders the PNG

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _draw_path_counts(fig, ax, report: RFReport, title: str) -> None:
    """Path counts on a log colour scale, holes painted red, offsets from the centre on the axes."""
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Patch

    counts = report.path_counts().astype(np.float64)
    radius = report.receptive_field // 2
    extent = (-radius - 0.5, radius + 0.5, radius + 0.5, -radius - 0.5)
    shown = np.ma.masked_equal(counts, 0)
    image = ax.imshow(shown, cmap="viridis", norm=LogNorm(vmin=max(counts[counts > 0].min(), 1), vmax=counts.max()), extent=extent, interpolation="nearest")
    holes = np.zeros(counts.shape + (4,))
    holes[counts == 0] = HOLE_RGBA
    ax.imshow(holes, extent=extent, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("dx (input offset from the centre output)")
    ax.set_ylabel("dy")
    fig.colorbar(image, ax=ax, shrink=0.8, label="paths to the centre output")
    if report.holes:
        ax.legend(handles=[Patch(color=HOLE_RGBA, label=f"hole (no path): {report.holes}")], loc="upper right", fontsize=8, framealpha=0.9)


def _stack_title(report: RFReport, note: str = "") -> str:
    verdict = f"{report.holes} holes" if report.gridding else "no holes"
    rule = "passes" if report.hdc_rule_ok else "fails"
    first = describe_stack(report) + (f" — {note}" if note else "")
    return f"{first}\nRF {report.receptive_field}, coverage {report.coverage:.1%} ({verdict}); M2={report.M2} {rule}"


def plot_stack(report: RFReport, path: str | Path, comparison: tuple[RFReport, str] | None = None) -> Path:
    """Path-count heatmap of ``report``'s stack beside ``comparison`` (same RF, other verdict)."""
    if report.receptive_field > MAX_DRAWN_RF:
        raise ValueError(f"receptive field {report.receptive_field} is too large to draw (at most {MAX_DRAWN_RF})")
    fig, axes = _figure(2 if comparison else 1)
    _draw_path_counts(fig, axes[0], report, _stack_title(report, "given stack"))
    if comparison:
        other, label = comparison
        _draw_path_counts(fig, axes[1], other, _stack_title(other, label))
    fig.suptitle(f"Paths from each input offset to the centre output, {report.kernel}×{report.kernel} kernels", fontsize=11)
    return save_figure(fig, path)


def plot_erf(erf: np.ndarray, path: str | Path, title: str, report: RFReport | None = None) -> Path:
    """Gradient ERF (|∂ centre output / ∂ input|, summed over channels) on a log scale; with an
    analytic ``report``, its receptive-field square is outlined and its path counts drawn beside."""
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    drawn = report is not None and report.receptive_field <= MAX_DRAWN_RF
    fig, axes = _figure(2 if drawn else 1)
    h, w = erf.shape
    cy, cx = h // 2, w // 2
    extent = (-cx - 0.5, w - cx - 0.5, h - cy - 0.5, -cy - 0.5)
    positive = erf[erf > 0]
    norm = LogNorm(vmin=max(positive.min(), positive.max() * 1e-6), vmax=positive.max()) if positive.size else None
    image = axes[0].imshow(np.ma.masked_equal(erf, 0), cmap="magma", norm=norm, extent=extent, interpolation="nearest")
    axes[0].set_facecolor("lightgray")
    axes[0].set_title(f"{title}\ngrey: exactly zero gradient", fontsize=10)
    axes[0].set_xlabel("dx (input offset from the centre output)")
    axes[0].set_ylabel("dy")
    fig.colorbar(image, ax=axes[0], shrink=0.8, label="|gradient| summed over channels")
    if report is not None:
        r = report.receptive_field // 2
        axes[0].add_patch(Rectangle((-r - 0.5, -r - 0.5), 2 * r + 1, 2 * r + 1, fill=False, edgecolor="cyan", linestyle="--", linewidth=1.2, label=f"analytic RF {report.receptive_field}"))
        axes[0].legend(loc="upper right", fontsize=8, framealpha=0.9)
    if drawn:
        _draw_path_counts(fig, axes[1], report, _stack_title(report, "analytic"))
    return save_figure(fig, path)
