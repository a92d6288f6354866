"""The progress of a whole comparison: one live line on a terminal, plain periodic lines otherwise.

Each run trains in a child process whose log holds plain progress lines
(:func:`segdil.train.logger.progress_line`); :class:`CompareProgress` reads the newest one and shows
``runs 3/12 done · hdc_synth seed 1 · step 40/100 · 8.6 img/s · ETA 6 min``. The ETA is the current
run's own estimate plus, for every run not started, the mean duration of the finished runs of the
same model (of all finished runs when that model has none yet; of the current run's projection
when none has finished).
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import IO, Any, Callable

from segdil.train.logger import parse_progress

LIVE_EVERY_S = 0.5  # redraw the live line at most this often
PLAIN_EVERY_S = 30.0  # a plain progress line at most this often (between runs' start and end lines)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class LogFollower:
    """The newest progress line of a growing log file (read incrementally)."""

    def __init__(self, path: Path):
        self.path, self.offset, self.rest = Path(path), 0, ""
        self.latest: dict[str, float] | None = None

    def poll(self) -> dict[str, float] | None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return self.latest
        self.offset += len(chunk)
        lines = (self.rest + chunk.decode("utf-8", errors="replace")).split("\n")
        self.rest = lines.pop()
        for line in lines:
            parsed = parse_progress(line)
            if parsed is not None:
                self.latest = parsed
        return self.latest


class CompareProgress:
    def __init__(
        self, runs: list[tuple[str, int]], echo: Callable[[str], None] = print, live: bool = False, stream: IO[str] | None = None, clock: Callable[[], float] = time.monotonic, budget_s: float | None = None
    ):
        self.runs = runs  # (label, seed) in the order they run
        self.budget_s = budget_s  # runs that end on their clock show seconds, not an unreachable step limit
        self.echo, self.live, self.stream, self.clock = echo, live, stream or sys.stdout, clock
        self.done = 0
        self.durations: dict[str, list[float]] = {}
        self.current: tuple[str, int] | None = None
        self.started = 0.0
        self.progress: dict[str, float] | None = None
        self.last_draw: float | None = None
        self.width = 0
        self.shown = ""

    # ---- estimates
    def _current_total(self) -> float | None:
        p = self.progress
        if p is None or not p.get("step"):
            return None
        return p["elapsed_s"] + p["eta_s"]

    def eta(self) -> float | None:
        """Seconds left for the whole comparison (None when nothing is known yet)."""
        everything = [d for ds in self.durations.values() for d in ds]
        current_total = self._current_total()
        remaining = 0.0
        if self.current is not None:
            if self.progress is not None:
                remaining += self.progress["eta_s"]
            else:
                guess = self._guess(self.current[0], everything, None)
                if guess is None:
                    return None
                remaining += max(0.0, guess - (self.clock() - self.started))
        start = self.done + (1 if self.current is not None else 0)
        for label, _ in self.runs[start:]:
            guess = self._guess(label, everything, current_total)
            if guess is None:
                return None
            remaining += guess
        return remaining

    def _guess(self, label: str, everything: list[float], current_total: float | None) -> float | None:
        mine = self.durations.get(label)
        if mine:
            return sum(mine) / len(mine)
        if everything:
            return sum(everything) / len(everything)
        return current_total

    # ---- the line
    def line(self) -> str:
        total = len(self.runs)
        parts = [f"runs {self.done}/{total} done"]
        if self.current is not None:
            label, seed = self.current
            parts.append(f"{label} seed {seed}")
            p = self.progress
            if p is not None:
                if self.budget_s is None:
                    parts.append(f"step {int(p['step'])}/{int(p['total'])}")
                else:
                    parts.append(f"step {int(p['step'])} · {p['elapsed_s']:.0f}/{self.budget_s:g} s")
                parts.append(f"{p['img_per_s']:.1f} img/s")
            else:
                parts.append("starting")
        parts.append(f"ETA {fmt_duration(self.eta())}")
        return " · ".join(parts)

    def draw(self, force: bool = False) -> None:
        now = self.clock()
        if self.live:
            if force or self.last_draw is None or now - self.last_draw >= LIVE_EVERY_S:
                text = self.line()[: max(20, shutil.get_terminal_size().columns - 1)]  # a wrapped line cannot be redrawn
                if text != self.shown or force:
                    self.stream.write("\r" + text + " " * max(0, self.width - len(text)))
                    self.stream.flush()
                self.width, self.last_draw, self.shown = len(text), now, text
        elif force or self.last_draw is None or now - self.last_draw >= PLAIN_EVERY_S:
            self.echo(self.line())
            self.last_draw = now

    def clear(self) -> None:
        """Remove the live line (before other output)."""
        if self.live and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width, self.shown = 0, ""

    # ---- events
    def start(self, label: str, seed: int, log: Path | None) -> None:
        self.current, self.started, self.progress = (label, seed), self.clock(), None
        if self.live:
            self.draw(force=True)
        elif log is not None:
            self.echo(f"[{self.done + 1}/{len(self.runs)}] {label} seed {seed}: training (progress in {log})")
            self.last_draw = self.clock()

    def update(self, progress: dict[str, float] | None) -> None:
        if progress is not None:
            self.progress = progress
        self.draw()

    def finish(self, label: str, seed: int, *, reused: bool = False, message: str = "") -> None:
        if not reused:
            self.durations.setdefault(label, []).append(self.clock() - self.started)
        self.done += 1
        self.current, self.progress = None, None
        if not self.live:
            self.echo(f"[{self.done}/{len(self.runs)}] {label} seed {seed}: {message}")
            self.last_draw = self.clock()
        else:
            self.draw(force=True)

    def close(self) -> None:
        self.clear()

    def summary(self) -> dict[str, Any]:
        return {"done": self.done, "total": len(self.runs)}
