"""The text of ``segdil rf``: parsing of ``--rates``, range checks, the report lines."""

from __future__ import annotations

import re

from segdil.errors import SegdilError, shown
from segdil.rf.analysis import RFReport, describe_stack

MAX_RF = 1_000_001
MAX_LAYERS = 256  # layers of one analysed stack; path counts stay finite in float64 well beyond
MAX_RATES_TEXT = 2000  # characters of --rates read at all
SHOWN_RATES = 24  # rates printed before the rest is counted


def parse_rates(text: str) -> tuple[int, ...]:
    """``"1,2,5"`` (commas or spaces) -> ``(1, 2, 5)``; anything else is a one-line error."""
    if len(text) > MAX_RATES_TEXT:
        raise SegdilError(f"--rates {shown(text)}: {len(text):,} characters; give at most {MAX_LAYERS} rates, e.g. --rates 1,2,5 --repeat 4")
    items = [t for t in re.split(r"[,\s]+", text.strip().strip("[]()")) if t]
    if not items or not all(t.isdigit() and int(t) >= 1 for t in items):
        raise SegdilError(f"--rates {shown(text)}: expected positive integers separated by commas, e.g. --rates 1,2,5")
    return tuple(int(t) for t in items)


def check_stack(rates: tuple[int, ...], repeat: int, kernel: int, stem: int = 0, where: str = "--rates/--repeat") -> None:
    if repeat < 1:
        raise SegdilError(f"--repeat {repeat}: the group must appear at least once")
    if stem + len(rates) * repeat > MAX_LAYERS:
        raise SegdilError(f"{where}: {stem + len(rates) * repeat:,} layers; segdil rf analyses stacks of at most {MAX_LAYERS}")
    if kernel < 3 or kernel % 2 == 0:
        raise SegdilError(f"--kernel {kernel}: use an odd kernel size >= 3, so that the centre output sits on a tap")
    rf = 1 + (kernel - 1) * (stem + sum(rates) * repeat)
    if rf > MAX_RF:
        raise SegdilError(f"{where}: receptive field {rf} is larger than {MAX_RF}; use smaller rates or fewer repeats")


def _signed(offsets: list[int], limit: int = 12) -> str:
    positive = [o for o in offsets if o > 0]
    shown = ", ".join(f"±{o}" for o in positive[:limit])
    return shown + (f", … ({len(offsets)} offsets)" if len(positive) > limit else "")


def _verdict(report: RFReport) -> str:
    if not report.gridding:
        return "no gridding: every offset of the receptive field reaches the centre output"
    why = f"the group's rates share the factor {report.common_factor}" if report.common_factor > 1 else "the rates grow too fast for the layers below to fill the gaps"
    rule = "the M rule passes, yet coverage finds holes" if report.hdc_rule_ok else "the M rule fails too"
    return f"GRIDDING: {report.holes} holes ({rule}; {why})"


def _listed(values, style: str = "[]", limit: int = SHOWN_RATES) -> str:
    """``values`` as ``[1, 2, 5]`` (``style="()"``: a tuple; ``" "``: space-separated), the first ``limit`` then a count."""
    values = list(values)
    sep = " " if style == " " else ", "
    body = sep.join(map(str, values[:limit])) + ("" if len(values) <= limit else f"{sep}… ({len(values)} in all)")
    if style == "()" and len(values) == 1:
        body += ","
    return body if style == " " else f"{style[0]}{body}{style[1]}"


def _bounded(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_report(report: RFReport) -> list[str]:
    """The human-readable report, one line per fact."""
    k, rf = report.kernel, report.receptive_field
    rule = f"M = {_listed(report.M)}: M2 = {report.M2} {'≤' if report.hdc_rule_ok else '>'} {k}, {'passes' if report.hdc_rule_ok else 'fails'}"
    lines = [
        f"stack            {_bounded(describe_stack(report))} = {_listed(report.stack, ' ')}, {k}×{k} kernels",
        f"receptive field  {rf}×{rf} = 1 + ({k}−1)·{sum(report.stack)}",
        f"HDC rule         {rule} (group {_listed(report.rates, '()')})",
        f"common factor    {report.common_factor}",
        f"coverage         {report.coverage:.3f} ({report.reached} of {rf * rf} offsets reach the centre output; {report.holes} holes)",
    ]
    if report.gridding:
        lines.append(f"holes (1-D)      {_signed(report.hole_offsets_1d())}; a 2-D offset (dy, dx) is a hole when dy or dx is one")
    if rf <= 41:
        counts = report.path_counts_1d[rf // 2 :]
        lines.append(f"paths (1-D)      offsets 0…{rf // 2}: {' '.join(str(int(c)) for c in counts)}; 2-D map = outer product")
    lines.append(f"verdict          {_verdict(report)}")
    return lines


def erf_lines(summary: dict, report: RFReport | None, source: str, samples: int) -> list[str]:
    size = summary["size"]
    lines = [
        f"ERF              {source}; |∂ centre output/∂ input| over {samples} random {size}×{size} input{'s' if samples > 1 else ''}",
        f"  extent         nonzero over {summary['extent']}×{summary['extent']}{' (the whole input)' if summary['extent'] >= size else ''}; "
        f"95% of |grad| within the centred {summary['side_95']}×{summary['side_95']}",
    ]
    if report is not None:
        lines.append(
            f"  vs analytic    {summary['inside_rf']:.1%} of |grad| inside the {report.receptive_field}×{report.receptive_field} RF; "
            f"{summary['nonzero_outside_rf']} pixels outside it and {summary['holes_with_gradient']} holes carry gradient"
        )
    return lines
