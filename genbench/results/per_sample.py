"""Writes the per-sample table (:func:`genbench.metrics.per_sample.per_sample_arrays`) as CSV, atomically."""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping

import numpy as np

from ..util.atomic import write_text_atomic


def _cell(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (float, np.floating)):
        return repr(float(value))  # shortest round-trip text: the CSV holds the exact float64
    return str(value)


def per_sample_csv(columns: Mapping[str, np.ndarray]) -> str:
    """CSV text: a header of the column names, one row per sample."""
    names = list(columns)
    lengths = {len(columns[n]) for n in names}
    if len(lengths) > 1:
        raise ValueError(f"per-sample columns of different lengths: {sorted(lengths)}")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    for i in range(lengths.pop() if lengths else 0):
        writer.writerow([_cell(columns[n][i]) for n in names])
    return buf.getvalue()


def write_per_sample_csv(path: str | os.PathLike, columns: Mapping[str, np.ndarray], overwrite: bool = False) -> None:
    """Write :func:`per_sample_csv` to ``path`` atomically; ConfigError when it exists and ``overwrite`` is False."""
    write_text_atomic(path, per_sample_csv(columns), overwrite=overwrite)
