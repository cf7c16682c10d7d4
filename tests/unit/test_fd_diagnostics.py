"""FD diagnostics: ranks against the closed form (n points in d > n dimensions span n - 1), the n <= d
warning, and the scipy-route check against pytorch-fid's own computation on the same statistics."""
from __future__ import annotations

import numpy as np
import pytest

from genbench.metrics.fd_diagnostics import covariance_diagnostics, fd_diagnostics
from genbench.metrics.fid import frechet_distance_from_stats
from genbench.stats.feature_stats import FeatureStats


def test_rank_of_few_samples_and_the_warning() -> None:
    x = np.random.default_rng(0).standard_normal((20, 32))
    diag = covariance_diagnostics(np.cov(x, rowvar=False), 20, "generated")
    assert diag["rank"] == 19  # 20 centred points span 19 dimensions
    assert diag["rank_deficient"] and "n=20" in diag["warning"] and "33" in diag["warning"]
    assert abs(diag["min_eigenvalue"]) < 1e-12
    full = covariance_diagnostics(np.cov(np.random.default_rng(1).standard_normal((500, 8)), rowvar=False), 500)
    assert full["rank"] == 8 and not full["rank_deficient"] and "warning" not in full
    assert full["min_eigenvalue"] > 0.5


def test_check_agrees_with_pytorch_fid_and_reports_the_imaginary_part() -> None:
    fid_score = pytest.importorskip("pytorch_fid.fid_score")
    rng = np.random.default_rng(2)
    gen = FeatureStats.from_features(rng.standard_normal((400, 12)))
    ref = FeatureStats.from_features(1.2 * rng.standard_normal((600, 12)) + 0.3)
    fd = frechet_distance_from_stats(gen, ref)
    out = fd_diagnostics(gen, ref, fd, check=True)
    want = fid_score.calculate_frechet_distance(gen.mean(), gen.cov(), ref.mean(), ref.cov())
    assert out["check"]["scipy_fd"] == pytest.approx(want, rel=1e-9)
    assert out["check"]["relative_difference"] < 1e-9
    assert "warnings" not in out
    few = FeatureStats.from_features(rng.standard_normal((10, 64)))
    ref64 = FeatureStats.from_features(rng.standard_normal((12, 64)))
    out = fd_diagnostics(few, ref64, frechet_distance_from_stats(few, ref64), check=True)
    assert len(out["warnings"]) == 2
    assert out["generated"]["rank"] == 9 and out["reference"]["rank"] == 11
    assert out["check"]["sqrtm_max_imaginary"] >= 0.0  # reported, whatever sqrtm gives on a singular product


def test_unknown_reference_count_gives_no_warning() -> None:
    sigma = np.cov(np.random.default_rng(3).standard_normal((100, 8)), rowvar=False)
    diag = covariance_diagnostics(sigma, None, "reference")
    assert diag["n"] is None and diag["rank_deficient"] is None and "warning" not in diag and diag["rank"] == 8
