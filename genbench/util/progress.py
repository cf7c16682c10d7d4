"""Progress of long work on stderr: one *phase* per piece of work (images extracted, k-NN rows, replicates).

Rules, the same for every phase:

- a phase that ends within :data:`MIN_SECONDS` (2 s) shows nothing;
- on a terminal, once it has run that long, a live line redrawn at most :data:`REDRAW_SECONDS` apart:
  label, bar, count, elapsed time, rate and ETA (count and rate only when the total is unknown);
  at its end the live line is replaced by the final line;
- elsewhere (a pipe, a log file, CI) only the final line: one line per phase, e.g.
  ``step 2 of 5: extract samples: 2000 images in 3.1 s (645 images/s)``;
- disabled (``-q``, and by default in the Python API): nothing at all.

Whether phases show is a context setting, :func:`enabled`, entered by the code that knows the user's
choice (the verbs' ``--quiet`` via ``ExtractOptions.progress``); :func:`current` hands out a live or a
silent :class:`Reporter`. Math functions never look at the setting: they take a plain callback
(``on_rows``, ``on_replicate``) or a Reporter from their caller. :class:`Steps` numbers the steps of a
multi-step job ("step k of N"), a prefix of the phases opened inside each step.

    with progress.enabled(True):
        with progress.current().phase("k-NN radii", total=len(x), unit="rows") as bar:
            radii = kth_neighbour_distances(x, 3, on_rows=bar.advance)
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import shutil
import sys
import time
from collections.abc import Iterator
from typing import TextIO

#: Phases ending sooner than this show nothing (seconds).
MIN_SECONDS = 2.0
#: Shortest time between two redraws of a live line on a terminal (seconds).
REDRAW_SECONDS = 0.2
#: Width of the bar itself, in characters (shrinks on narrow terminals).
BAR_WIDTH = 24

_ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("genbench_progress_enabled", default=False)
_STEP: contextvars.ContextVar[str] = contextvars.ContextVar("genbench_progress_step", default="")
_ACTIVE: contextvars.ContextVar[tuple] = contextvars.ContextVar("genbench_progress_active", default=())


def _clock() -> float:  # replaced in tests
    return time.monotonic()


# ----------------------------------------------------------------------------- formatting (pure)


def format_duration(seconds: float) -> str:
    """``0.4 s``, ``12.3 s``, ``4:05`` (minutes:seconds), ``1:02:03`` (hours)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_rate(per_second: float, unit: str) -> str:
    """``813 images/s``, ``12.5 rows/s``, ``0.42 replicates/s``."""
    if not math.isfinite(per_second):
        return f"? {unit}/s"
    digits = 0 if per_second >= 100 else 1 if per_second >= 10 else 2
    return f"{per_second:.{digits}f} {unit}/s"


def format_count(done: int, total: int | None, unit: str) -> str:
    return f"{done}/{total} {unit}" if total is not None else f"{done} {unit}"


def final_line(label: str, done: int, total: int | None, unit: str, elapsed: float, finished: bool = True) -> str:
    """The one line a phase leaves behind: what, how much, how long, how fast."""
    rate = format_rate(done / elapsed, unit) if elapsed > 0 else f"? {unit}/s"
    if finished:
        return f"{label}: {done} {unit} in {format_duration(elapsed)} ({rate})"
    return f"{label}: stopped after {format_count(done, total, unit)} in {format_duration(elapsed)} ({rate})"


def live_line(label: str, done: int, total: int | None, unit: str, elapsed: float, width: int = 100) -> str:
    """The redrawn line on a terminal: label, bar and percentage (known total), count, elapsed, rate, ETA."""
    rate = done / elapsed if elapsed > 0 else float("nan")
    parts = [format_count(done, total, unit), format_duration(elapsed), format_rate(rate, unit)]
    bar = ""
    if total:
        fraction = min(max(done / total, 0.0), 1.0)
        eta = (total - done) / rate if done > 0 and math.isfinite(rate) and rate > 0 else float("nan")
        parts.append(f"ETA {format_duration(eta)}")
        tail = "  ".join(parts)
        room = width - len(label) - len(tail) - 10
        size = max(0, min(BAR_WIDTH, room))
        filled = int(round(fraction * size))
        bar = f" [{'#' * filled}{'-' * (size - filled)}] {fraction * 100:3.0f}%" if size >= 5 else f" {fraction * 100:3.0f}%"
    text = f"{label}{bar}  " + "  ".join(parts)
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


# ----------------------------------------------------------------------------- phases


class NullPhase:
    """A phase that shows nothing (progress disabled)."""

    done = 0
    total: int | None = None

    def advance(self, n: int = 1) -> None:
        pass

    update = advance  # the name click's bars used


class Phase:
    """One piece of work on a stream; see the module docstring for what it shows, and when."""

    def __init__(self, label: str, total: int | None, unit: str, stream: TextIO, min_seconds: float) -> None:
        self.label, self.total, self.unit = label, (None if total is None else int(total)), unit
        self.stream, self.min_seconds = stream, min_seconds
        self.done = 0
        self.started = _clock()
        self._last_draw = -math.inf
        self._drawn = False
        try:
            self.tty = bool(stream.isatty())
        except (AttributeError, ValueError):  # a closed or odd stream: treat as a log
            self.tty = False

    def advance(self, n: int = 1) -> None:
        """``n`` more units done; on a terminal, redraw when due."""
        self.done += int(n)
        if not self.tty or _ACTIVE.get()[-1:] != (self,):  # a phase opened inside this one owns the line
            return
        now = _clock()
        elapsed = now - self.started
        if elapsed >= self.min_seconds and now - self._last_draw >= REDRAW_SECONDS:
            self._write("\r" + live_line(self.label, self.done, self.total, self.unit, elapsed, _width()) + "\x1b[K")
            self._last_draw, self._drawn = now, True

    update = advance

    def close(self, finished: bool = True) -> None:
        """Leave the final line when the phase ran long enough (or already showed a live line)."""
        elapsed = _clock() - self.started
        if elapsed < self.min_seconds and not self._drawn:
            return
        text = final_line(self.label, self.done, self.total, self.unit, elapsed, finished)
        self._write(("\r" + text + "\x1b[K\n") if self.tty else text + "\n")

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe must never fail the computation
            pass


def _width() -> int:
    return max(40, shutil.get_terminal_size((100, 24)).columns - 1)


class Reporter:
    """Opens phases on ``stream`` (default: the current ``sys.stderr``), or silent ones when not ``live``."""

    def __init__(self, live: bool = True, stream: TextIO | None = None, min_seconds: float | None = None) -> None:
        self.live, self.stream, self.min_seconds = live, stream, min_seconds

    @contextlib.contextmanager
    def phase(self, label: str, total: int | None = None, unit: str = "items") -> Iterator[Phase | NullPhase]:
        """A phase of ``total`` ``unit`` (None: unknown); its label gets the current step's prefix."""
        if not self.live:
            yield NullPhase()
            return
        prefix = _STEP.get()
        bar = Phase(f"{prefix}{label}", total, unit, self.stream or sys.stderr,
                    MIN_SECONDS if self.min_seconds is None else self.min_seconds)
        token = _ACTIVE.set(_ACTIVE.get() + (bar,))
        finished = False
        try:
            yield bar
            finished = True
        finally:
            _ACTIVE.reset(token)
            bar.close(finished)


SILENT = Reporter(live=False)


def current() -> Reporter:
    """A live Reporter on stderr inside ``enabled(True)``, else a silent one."""
    return Reporter() if _ENABLED.get() else SILENT


def is_enabled() -> bool:
    return _ENABLED.get()


@contextlib.contextmanager
def enabled(on: bool) -> Iterator[None]:
    """Show (True) or hide (False) the phases opened through :func:`current` inside this block."""
    token = _ENABLED.set(bool(on))
    try:
        yield
    finally:
        _ENABLED.reset(token)


class Steps:
    """The steps of a multi-step job: inside ``step()``, phase labels start with ``step k of N: ``."""

    def __init__(self, total: int) -> None:
        self.total, self.index = int(total), 0

    @contextlib.contextmanager
    def step(self) -> Iterator[int]:
        """The next step (numbered from 1); yields its number."""
        self.index += 1
        token = _STEP.set(f"step {self.index} of {max(self.total, self.index)}: ")
        try:
            yield self.index
        finally:
            _STEP.reset(token)


@contextlib.contextmanager
def progress_bar(total: int, label: str, enabled: bool = True) -> Iterator[Phase | NullPhase]:
    """A phase of ``total`` images on stderr when ``enabled`` (extraction's bar); see the module docstring."""
    with Reporter(live=enabled).phase(label, total, "images") as bar:
        yield bar
