"""The gate's pure logic: rules, directions, intervals, provenance compatibility."""
from __future__ import annotations

import copy

import pytest

from genbench.errors import ConfigError
from genbench.gate import Rule, better, evaluate, incompatibilities, metric_kind, parse_rule

PROV = {
    "extractor": "fmnist-cnn",
    "layer": "penultimate",
    "preprocessing": "luma-bilinear28",
    "weights_sha256": "ab" * 32,
    "feature_dim": 128,
    "inputs": {
        "generated": {"kind": "folder", "location": "/tmp/a", "n": 5000},
        "reference": {"kind": "statistics", "reference_id": "fashion-mnist-train_fmnist-cnn", "sha256": "cd" * 32, "n": 60000},
    },
    "metric_options": {"seed": 0, "is_splits": 10, "kid_subsets": 100, "kid_subset_size": 1000, "bootstrap": 200},
    "seed": 0,
}


def result(fd=10.0, fd_ci=(9.0, 11.0), is_=8.0, is_ci=(7.8, 8.2), **prov_changes):
    prov = copy.deepcopy(PROV)
    prov.update(prov_changes)
    metrics = {"fd_fmnist": {"value": fd}, "is_fmnist": {"mean": is_, "std": 0.1}}
    if fd_ci is not None:
        metrics["fd_fmnist"]["ci95"] = list(fd_ci)
    if is_ci is not None:
        metrics["is_fmnist"]["ci95"] = list(is_ci)
    return {"metrics": metrics, "provenance": prov}


def shifted(doc, metric, delta):
    """A copy of ``doc`` with one metric (value and interval) moved by ``delta``."""
    out = copy.deepcopy(doc)
    entry = out["metrics"][metric]
    key = "value" if "value" in entry else "mean"
    entry[key] += delta
    if "ci95" in entry:
        entry["ci95"] = [entry["ci95"][0] + delta, entry["ci95"][1] + delta]
    return out


# ----------------------------------------------------------------------------- kinds and parsing


@pytest.mark.parametrize(
    "name, kind, direction",
    [("fid", "fd", "lower"), ("fd_fmnist", "fd", "lower"), ("kid_tiny", "kid", "lower"), ("is", "is", "higher"),
     ("is_fmnist", "is", "higher"), ("fid_infinity", "fd-infinity", "lower"), ("is_fmnist_infinity", "is-infinity", "higher"),
     ("precision", "precision", "higher"), ("coverage", "coverage", "higher"), ("memorized_fraction", None, None)],
)
def test_metric_kinds_and_directions(name, kind, direction):
    assert metric_kind(name) == kind
    assert better(name) == direction


def test_parse_rule_and_its_errors():
    assert parse_rule("fid=30", "max") == Rule("fid", "max", 30.0)
    assert parse_rule(" is_fmnist = 0.1", "max_decrease") == Rule("is_fmnist", "max_decrease", 0.1)
    for text, message in [("fid", "METRIC=NUMBER"), ("=3", "METRIC=NUMBER"), ("fid=abc", "not a number"), ("fid=nan", "finite")]:
        with pytest.raises(ConfigError, match=message) as info:
            parse_rule(text, "max")
        assert "--max" in str(info.value)
    with pytest.raises(ConfigError, match=">= 0"):
        parse_rule("fid=-1", "max_increase")


# ----------------------------------------------------------------------------- absolute and relative rules


def test_absolute_bounds_need_no_baseline():
    new = result(fd=25.0, is_=8.5)
    assert evaluate(new, None, [Rule("fd_fmnist", "max", 30), Rule("is_fmnist", "min", 8)]).passed
    report = evaluate(new, None, [Rule("fd_fmnist", "max", 20), Rule("is_fmnist", "min", 8)])
    assert not report.passed and report.exit_code == 1
    assert [v.metric for v in report.regressions] == ["fd_fmnist"]
    assert "above the maximum 20" in report.regressions[0].detail


def test_generic_kind_names_resolve_to_the_only_matching_metric():
    report = evaluate(result(fd=25.0), None, [Rule("fd", "max", 20)])
    assert report.regressions[0].metric == "fd_fmnist"


def test_allowed_increase_and_decrease():
    old = result()
    ok = evaluate(shifted(old, "fd_fmnist", 0.4), old, [Rule("fd_fmnist", "max_increase", 0.5)])
    assert ok.passed and ok.verdicts[0].delta == pytest.approx(0.4)
    bad = evaluate(shifted(old, "fd_fmnist", 0.6), old, [Rule("fd_fmnist", "max_increase", 0.5)])
    assert not bad.passed and "rose by 0.6" in bad.regressions[0].detail
    # An improvement never trips a regression rule.
    assert evaluate(shifted(old, "fd_fmnist", -5), old, [Rule("fd_fmnist", "max_increase", 0.0)]).passed
    assert evaluate(shifted(old, "is_fmnist", -0.05), old, [Rule("is_fmnist", "max_decrease", 0.1)]).passed
    assert not evaluate(shifted(old, "is_fmnist", -0.2), old, [Rule("is_fmnist", "max_decrease", 0.1)]).passed


def test_a_rule_against_the_metric_direction_is_a_usage_error():
    old = result()
    with pytest.raises(ConfigError, match="use --max-decrease"):
        evaluate(old, old, [Rule("is_fmnist", "max_increase", 0.1)])
    with pytest.raises(ConfigError, match="use --max-increase"):
        evaluate(old, old, [Rule("fd_fmnist", "max_decrease", 0.1)])


def test_missing_metric_or_baseline_is_a_usage_error():
    old = result()
    with pytest.raises(ConfigError, match="not in the new result; it has: fd_fmnist, is_fmnist"):
        evaluate(old, old, [Rule("kid_fmnist", "max", 1)])
    baseline = copy.deepcopy(old)
    del baseline["metrics"]["is_fmnist"]
    with pytest.raises(ConfigError, match="not in the baseline"):
        evaluate(old, baseline, [Rule("is_fmnist", "max_decrease", 0.1)])
    with pytest.raises(ConfigError, match="needs a baseline"):
        evaluate(old, None, [Rule("fd_fmnist", "max_increase", 0.1)])


# ----------------------------------------------------------------------------- within uncertainty


def test_within_uncertainty_passes_a_change_inside_the_intervals_and_fails_a_real_regression():
    old = result(fd=10.0, fd_ci=(9.0, 11.0), is_=8.0, is_ci=(7.8, 8.2))
    # Worse, but the intervals still overlap (new lower end 10.5 < old upper end 11): not a regression.
    small = shifted(old, "fd_fmnist", 1.5)
    report = evaluate(small, old, [], within_uncertainty=True)
    assert report.passed and {v.metric for v in report.verdicts} == {"fd_fmnist", "is_fmnist"}
    # FD up by 2.5: new interval [11.5, 13.5] lies wholly above [9, 11].
    big = shifted(old, "fd_fmnist", 2.5)
    report = evaluate(big, old, [], within_uncertainty=True)
    assert [v.metric for v in report.regressions] == ["fd_fmnist"]
    assert "lies entirely above" in report.regressions[0].detail
    # IS is higher-is-better: a drop beyond the intervals regresses, a rise never does.
    assert not evaluate(shifted(old, "is_fmnist", -0.5), old, [], within_uncertainty=True).passed
    assert evaluate(shifted(old, "is_fmnist", +5.0), old, [], within_uncertainty=True).passed
    assert evaluate(shifted(old, "fd_fmnist", -5.0), old, [], within_uncertainty=True).passed


def test_within_uncertainty_needs_intervals():
    old = result(fd_ci=None, is_ci=None)
    with pytest.raises(ConfigError, match="--bootstrap"):
        evaluate(old, old, [], within_uncertainty=True)
    with pytest.raises(ConfigError, match="not in the baseline"):
        evaluate(result(fd_ci=(9, 11)), result(fd_ci=None), [], within_uncertainty=True)
    with pytest.raises(ConfigError, match="interval in one result but not in the new result"):
        evaluate(result(fd_ci=None, is_ci=None), result(), [], within_uncertainty=True)


# ----------------------------------------------------------------------------- provenance


@pytest.mark.parametrize(
    "change, field",
    [
        ({"protocol": "adm"}, "protocol"),
        ({"extractor": "inception-v3"}, "extractor"),
        ({"weights_sha256": "ef" * 32}, "weights_sha256"),
        ({"preprocessing": "other"}, "preprocessing"),
        ({"inputs": {**PROV["inputs"], "reference": {**PROV["inputs"]["reference"], "reference_id": "fashion-mnist-test_fmnist-cnn"}}}, "reference id"),
        ({"inputs": {**PROV["inputs"], "reference": {**PROV["inputs"]["reference"], "sha256": "00" * 32}}}, "reference sha256"),
        ({"inputs": {**PROV["inputs"], "generated": {"kind": "folder", "location": "/tmp/a", "n": 10000}}}, "generated n"),
        ({"metric_options": {**PROV["metric_options"], "is_splits": 1}}, "is_splits"),
    ],
)
def test_incompatible_provenance_is_refused(change, field):
    old = result()
    new = result(fd=10.1, **change)
    with pytest.raises(ConfigError, match=field) as info:
        evaluate(new, old, [Rule("fd_fmnist", "max_increase", 1.0)])
    assert "--ignore-provenance" in str(info.value)


def test_compatible_differences_and_waivers():
    old = result()
    # Another seed, another bootstrap count, another generated folder: same measurement.
    new = result(seed=3, metric_options={**PROV["metric_options"], "seed": 3, "bootstrap": 50},
                 inputs={**PROV["inputs"], "generated": {"kind": "folder", "location": "/ci/b", "n": 5000}})
    assert incompatibilities(old["provenance"], new["provenance"]) == []
    other = result(inputs={**PROV["inputs"], "generated": {"kind": "folder", "location": "/ci/b", "n": 4000}})
    assert evaluate(other, old, [Rule("fd_fmnist", "max_increase", 1.0)], ignore_provenance=["n_generated"]).passed
    with pytest.raises(ConfigError, match="unknown field"):
        incompatibilities(old["provenance"], other["provenance"], ["nonsense"])
    # Absolute bounds do not compare provenance at all.
    assert evaluate(result(extractor="x"), old, [Rule("fd_fmnist", "max", 100)]).passed


def test_reference_without_id_compares_location():
    a = {"inputs": {"reference": {"kind": "folder", "location": "/data/ref", "n": 100}}}
    b = {"inputs": {"reference": {"kind": "folder", "location": "/data/other", "n": 100}}}
    assert any("location" in line for line in incompatibilities(a, b))
    assert incompatibilities(a, a) == []


# ----------------------------------------------------------------------------- output


def test_table_markdown_and_json_outputs():
    old = result()
    report = evaluate(shifted(old, "fd_fmnist", 2.5), old, [Rule("fd_fmnist", "max_increase", 0.5)])
    table = report.format_table()
    assert "fd_fmnist" in table and "REGRESSED" in table and "+2.5" in table and "increase <= 0.5" in table
    assert "is_fmnist" in table  # shared metric without a rule, shown for context
    md = report.format_markdown()
    assert md.startswith("### ❌") and "| fd_fmnist |" in md and "**REGRESSED**" in md
    doc = report.to_dict()
    assert doc["passed"] is False and doc["exit_code"] == 1 and doc["regressions"] == ["fd_fmnist"]
    row = doc["verdicts"][0]
    assert row["old"] == 10.0 and row["new"] == 12.5 and row["delta"] == pytest.approx(2.5) and row["status"] == "regressed"
    assert evaluate(old, old, [Rule("fd_fmnist", "max_increase", 0.5)]).format_markdown().startswith("### ✅")
