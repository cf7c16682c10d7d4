"""Numbers users already have: pinned, so a change of code paths cannot move them unnoticed.

The demo rows are the README's table (`genbench demo`, 10k test images against the bundled training
statistics). The leaderboard row was computed before the scoring paths were merged into
genbench.evaluate, with `genbench leaderboard -n 300 --reference-n 1000 --bootstrap 20 --inception off`
at commit 58594cd. Tolerances allow BLAS rounding across CPUs (matrix square roots, k-NN distances),
never a change of method: a fraction of 300 samples may move by one sample at most.
"""
from __future__ import annotations

import pytest

from genbench.config import ExtractOptions, MetricOptions
from genbench.evaluate import score
from genbench.sources.resolve import as_source
from genbench.sources.transforms import TransformedSource
from tests.conftest import needs_fashion_mnist

pytestmark = needs_fashion_mnist  # the demo rows score the test split; the leaderboard row reads it too

# (row, transforms, fd_fmnist, is_fmnist mean) as the README prints them
DEMO = [
    ("test split", [], 0.497, 8.385),
    ("noise std=16", [("gaussian-noise", 16.0)], 28.19, 7.867),
]


@pytest.mark.parametrize("name, steps, fd, is_mean", DEMO, ids=[d[0] for d in DEMO])
def test_demo_rows_of_the_readme(name, steps, fd, is_mean):
    base = as_source("fashion-mnist:test")
    source = TransformedSource(base, steps, seed=0) if steps else base
    result = score(source, "fashion-mnist:train", None, ExtractOptions(batch_size=500, progress=False),
                   MetricOptions(seed=0))
    assert set(result.metrics) == {"fd_fmnist", "is_fmnist"}  # the bundled statistics keep no features: no KID
    assert result.value("fd_fmnist") == pytest.approx(fd, abs=0.0005 if fd < 1 else 0.005)
    assert result.value("is_fmnist") == pytest.approx(is_mean, abs=0.0005)


def test_a_leaderboard_row_computed_before_the_paths_were_merged():
    from genbench.baselines.board import BOARD, baseline_row_specs
    from genbench.leaderboard import score_rows, table_rows

    rows, _ = score_rows(baseline_row_specs(["cgan"]), 300, 0, reference_n=1000, bootstrap=20, board=BOARD)
    (row,) = table_rows(rows, BOARD)
    expected = {"fd_fmnist": 40.58857974953844, "is_fmnist": 6.9229779611684235, "kid_fmnist": 8.639098237350224,
                "is_fmnist_std": 0.5058756545160552, "kid_fmnist_std": 2.7328905458967565,
                "fd_fmnist_ci95_lo": 34.4957203357024, "fd_fmnist_ci95_hi": 49.72842049674328,
                "kid_fmnist_ci95_lo": 7.950988034213064, "kid_fmnist_ci95_hi": 9.04932988551883}
    for key, value in expected.items():
        assert row[key] == pytest.approx(value, rel=1e-5), key
    fractions = {"precision": 0.8466666666666667, "recall": 0.624, "density": 1.1133333333333333, "coverage": 0.596}
    for key, value in fractions.items():
        assert row[key] == pytest.approx(value, abs=1 / 300 + 1e-9), key
