"""The metrics beyond FID in the one registry: JSON shape, directions, preflight and bad-input messages, roles."""
from __future__ import annotations

import numpy as np
import pytest

from genbench.config import MetricOptions
from genbench.errors import ConfigError, InputError, ReferenceStatsError
from genbench.metrics.inputs import Evaluated
from genbench.metrics.registry import (
    METRICS,
    TEST_FEATURES,
    TRAIN_FEATURES,
    compute_plan,
    direction,
    preflight_metrics,
)
from genbench.metrics.values import MetricValue
from genbench.stats.feature_stats import FeatureStats

NAMES = ["vendi", "mifid", "top_precision", "top_recall", "rarity", "realism", "alpha_precision", "beta_recall",
         "authenticity", "fld", "fld_gap"]
IDENTITY = {"extractor": "test-tiny", "preprocessing": "none", "feature_dim": 6}


def _ev(role: str, x: np.ndarray, identity: dict | None = None) -> Evaluated:
    return Evaluated(role, f"{role}.npz", dict(identity or IDENTITY), FeatureStats.from_features(x),
                     features=x.astype(np.float32))


def _inputs(seed: int = 0) -> dict[str, Evaluated]:
    rng = np.random.default_rng(seed)
    return {"gen": _ev("generated", rng.standard_normal((120, 6)) * 1.1),
            "ref": _ev("reference", rng.standard_normal((150, 6))),
            TRAIN_FEATURES: _ev("train", rng.standard_normal((200, 6))),
            TEST_FEATURES: _ev("test", rng.standard_normal((100, 6)))}


def test_all_are_registered_with_directions() -> None:
    for name in NAMES:
        assert name in METRICS
    assert direction("vendi") == "higher" and direction("mifid") == "lower" and direction("fld") == "lower"
    assert direction("rarity") is None  # descriptive: neither direction is better


def test_one_plan_gives_the_json_shape() -> None:
    ev = _inputs()
    plan = [(n, n) for n in NAMES]
    out = compute_plan(plan, ev["gen"], ev["ref"], MetricOptions(bootstrap=20),
                       roles={k: v for k, v in ev.items() if k in (TRAIN_FEATURES, TEST_FEATURES)})
    for name in NAMES:
        assert isinstance(out[name]["value"], float), name
        assert MetricValue.from_dict(out[name]).headline == out[name]["value"], name  # what tables and gates read
    assert out["authenticity"]["train"] == "train.npz"  # --train overrides the reference
    assert len(out["authenticity"]["ci95"]) == 2 and len(out["rarity"]["ci95"]) == 2
    m = out["mifid"]  # in 6 dimensions random points already lie within cosine distance 0.1 of some training point
    assert m["penalised"] and m["value"] == pytest.approx(m["fd"] / m["memorization_distance"], rel=1e-12)


def test_roles_fall_back_or_are_required() -> None:
    ev = _inputs(1)
    out = compute_plan([("authenticity", "authenticity")], ev["gen"], ev["ref"], MetricOptions())
    assert out["authenticity"]["train"] == "reference.npz"
    with pytest.raises(ConfigError, match="--train"):
        compute_plan([("fld", "fld")], ev["gen"], ev["ref"], MetricOptions())
    with pytest.raises(ConfigError, match="--test"):
        compute_plan([("fld", "fld")], ev["gen"], ev["ref"], MetricOptions(), roles={TRAIN_FEATURES: ev[TRAIN_FEATURES]})


def test_train_and_test_from_different_spaces_are_refused() -> None:
    ev = _inputs(2)
    other = _ev("test", ev[TEST_FEATURES].features, {**IDENTITY, "extractor": "fmnist-cnn"})
    with pytest.raises(ReferenceStatsError, match="extractor"):
        compute_plan([("fld", "fld")], ev["gen"], ev["ref"], MetricOptions(),
                     roles={TRAIN_FEATURES: ev[TRAIN_FEATURES], TEST_FEATURES: other})


def test_preflight_names_the_option_and_the_minimum() -> None:
    with pytest.raises(ConfigError, match=r"--rarity-k.*at least 6 reference"):
        preflight_metrics([("rarity", "rarity")], 100, 5, MetricOptions(rarity_k=5))
    with pytest.raises(ConfigError, match=r"TopP&R needs at least 22 generated"):
        preflight_metrics([("top_precision", "top_precision")], 10, 500, MetricOptions())
    with pytest.raises(ConfigError, match="--vendi-q"):
        preflight_metrics([("vendi", "vendi")], 10, 10, MetricOptions(vendi_q="-1"))
    with pytest.raises(ConfigError, match="--mifid-eps"):
        preflight_metrics([("mifid", "mifid")], 10, 10, MetricOptions(mifid_eps=0.0))
    with pytest.raises(ConfigError, match="--top-pr-alpha"):
        preflight_metrics([("top_recall", "top_recall")], 100, 100, MetricOptions(top_pr_alpha=1.5))


def test_nan_features_are_refused() -> None:
    ev = _inputs(3)
    bad = ev["gen"].features.copy()
    bad[4, 2] = np.nan
    gen = Evaluated("generated", "gen.npz", dict(IDENTITY), ev["gen"].stats, features=bad)
    for name in ("vendi", "realism", "authenticity", "alpha_precision", "mifid"):
        with pytest.raises(InputError, match="NaN"):
            compute_plan([(name, name)], gen, ev["ref"], MetricOptions())
