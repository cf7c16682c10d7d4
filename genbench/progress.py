"""Progress bars on stderr (click's), silenced by --quiet."""
from __future__ import annotations

import contextlib
import sys
from typing import Iterator

import click


class _NullBar:
    def update(self, n: int) -> None:
        pass


@contextlib.contextmanager
def progress_bar(total: int, label: str, enabled: bool = True) -> Iterator:
    """A bar over ``total`` items on stderr; a no-op when disabled or when stderr is not a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield _NullBar()
        return
    with click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True, show_eta=True) as bar:
        yield bar
