"""Helpers for a project's own test suite: fail a test when generated samples fall below a quality bar.

    from genbench.testing import assert_quality

    def test_generator_quality(trained_generator):
        samples = trained_generator.sample(5000, seed=0)            # uint8 [N, H, W, C] or [N, 3, H, W]
        assert_quality(samples, ref="fashion-mnist:train", max_fd=30, min_is=7.5, extractor="fmnist-cnn")

Bounds are checked with the same rules as ``genbench check --max/--min`` (:mod:`genbench.gate`);
the metric names follow the extractor (``max_fd`` checks ``fid`` on Inception, ``fd_fmnist`` on
``fmnist-cnn``).
"""
from __future__ import annotations

from typing import Any

from .errors import ConfigError
from .gate import Rule, evaluate, metric_kind
from .results.records import ScoreResult


def assert_quality(
    samples: Any,
    ref: Any,
    max_fd: float | None = None,
    min_is: float | None = None,
    max_kid: float | None = None,
    **score_kwargs: Any,
) -> ScoreResult:
    """Score ``samples`` against ``ref`` and raise AssertionError with a readable table when a bound fails.

    ``samples``/``ref``: anything :func:`genbench.score` accepts (arrays, folders, reference ids, ...).
    ``score_kwargs`` go to :func:`genbench.score` (``extractor``, ``seed``, ``kid_subset_size``, ...).
    Returns the ScoreResult when every bound holds. Raises ConfigError when no bound is given.
    """
    from .api import score

    bounds = [(kind, rule, limit) for kind, rule, limit in (("fd", "max", max_fd), ("is", "min", min_is),
                                                              ("kid", "max", max_kid)) if limit is not None]
    if not bounds:
        raise ConfigError("assert_quality: give at least one bound (max_fd, min_is or max_kid)")
    if "metrics" in score_kwargs:
        raise ConfigError("assert_quality: the metrics follow from the bounds; do not pass metrics=")
    result = score(samples, ref, metrics=[kind for kind, _, _ in bounds], **score_kwargs)
    names = {metric_kind(name): name for name in result.metrics}
    rules = [Rule(names[kind], rule, float(limit)) for kind, rule, limit in bounds]
    report = evaluate(result.to_dict(), None, rules)
    if not report.passed:
        p = result.provenance
        inputs = p.get("inputs", {})
        ref_info = inputs.get("reference", {})
        context = (
            f"extractor {p.get('extractor')} ({p.get('preprocessing')}), {inputs.get('generated', {}).get('n')} "
            f"generated vs {ref_info.get('reference_id') or ref_info.get('location')} "
            f"(n={ref_info.get('n')}), seed {p.get('seed')}"
        )
        raise AssertionError(f"genbench quality bar not met ({context}):\n{report.format_table()}")
    return result
