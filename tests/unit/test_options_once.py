"""Options defined once: genbench.config's dataclass fields give the CLI flags and the Python API keywords."""
from __future__ import annotations

import click
import numpy as np
import pytest
from click.testing import CliRunner

import genbench
from genbench import api
from genbench.cli.app import main
from genbench.cli.options import build_extract_options, build_metric_options
from genbench.config import ExtractOptions, MetricOptions, default_batch_size, option_fields, param_name
from genbench.errors import ConfigError
from tests.conftest import make_images

#: the MetricOptions fields `genbench score` exposes (all of them)
SCORE_METRIC_FIELDS = {f.name for f in option_fields(MetricOptions)}


def _params(*verb: str) -> dict[str, click.Parameter]:
    cmd: click.Command = main
    for name in verb:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    return {p.name: p for p in cmd.params if p.name}


def _cli_default(f, param: click.Parameter):
    return (not param.default) if f.metadata.get("invert") else param.default


@pytest.mark.parametrize("verb", [("score",), ("extract",), ("stats",)])
def test_every_extract_option_has_its_flag_and_the_dataclass_default(verb):
    params = _params(*verb)
    for f in option_fields(ExtractOptions):
        param = params[param_name(f)]
        assert f.metadata["flag"] in param.opts, f.name
        assert param.help == f.metadata["help"], f.name
        assert _cli_default(f, param) == f.default, f.name  # a None default stays None
    assert params["preprocessing"].opts == ["--preprocessing", "--resize"]
    assert set(params["quiet"].opts) == {"--quiet", "-q"} and params["quiet"].default is False
    assert params["batch_size"].default is None and params["device"].callback is not None


def test_every_metric_option_of_score_has_its_flag_and_the_dataclass_default():
    params = _params("score")
    for f in option_fields(MetricOptions):
        assert f.name in SCORE_METRIC_FIELDS
        param = params[param_name(f)]
        assert f.metadata["flag"] in param.opts, f.name
        assert param.default == f.default, f.name
        if "choices" in f.metadata:
            assert isinstance(param.type, click.Choice) and list(param.type.choices) == list(f.metadata["choices"])
        elif "min" in f.metadata:
            assert isinstance(param.type, click.IntRange) and param.type.min == f.metadata["min"], f.name
        elif isinstance(f.default, bool):
            assert param.is_flag, f.name
        else:  # float and str options: click's type of the default
            assert param.type.name == {float: "float", str: "text"}[type(f.default)], f.name
    assert params["pr_k"].opts == ["--pr-k"] and params["dc_k"].opts == ["--dc-k"]


def test_verb_specific_defaults_are_kept():
    check = _params("check")
    for name in ("seed", "is_splits", "kid_subsets", "kid_subset_size", "bootstrap"):
        assert check[name].default is None, name  # None: follow the baseline
    assert "pr_k" not in check
    sensitivity = _params("probe", "sensitivity")
    assert sensitivity["kid_subset_size"].default == 1000 and "is_splits" not in sensitivity


def test_builders_map_parsed_flags_to_the_dataclasses():
    kw = {"extractor": "test-tiny", "weights": None, "allow_unverified_weights": False, "weights_sha256": None,
          "preprocessing": None, "batch_size": None, "device": "cpu", "workers": 0, "data_dir": None,
          "quiet": True, "no_cache": True, "precision": "float32", "pr_k": 7, "dc_k": 9, "seed": 3}
    xo = build_extract_options(kw)
    assert (xo.progress, xo.cache, xo.extractor) == (False, False, "test-tiny")
    assert kw["quiet"] is True  # verbs read it afterwards
    mo = build_metric_options(kw, kid_subset_size=10)
    assert (mo.prdc_k_precision_recall, mo.prdc_k_density_coverage, mo.seed, mo.kid_subset_size) == (7, 9, 3, 10)
    assert mo.is_splits == MetricOptions().is_splits  # not a flag of this verb: the dataclass default


def test_cli_score_passes_pr_k_to_metric_options(monkeypatch, tmp_path):
    seen = {}

    def fake_score(generated, reference, metrics, xo, mo, **roles):
        seen.update(xo=xo, mo=mo, roles=roles)
        raise ConfigError("stop here")

    monkeypatch.setattr("genbench.api._score", fake_score)  # the CLI scores through genbench.api.run_score
    result = CliRunner().invoke(main, ["score", "gen", "--ref", "ref", "--pr-k", "4", "--dc-k", "6", "-q", "--no-cache"])
    assert result.exit_code == 2, result.output
    assert seen["mo"].prdc_k_precision_recall == 4 and seen["mo"].prdc_k_density_coverage == 6
    assert seen["xo"].progress is False and seen["xo"].cache is False
    assert seen["roles"] == {"train": None, "test": None, "per_sample": False}


def _capture_score(monkeypatch) -> dict:
    seen: dict = {}

    def fake_score(generated, reference, metrics, xo, mo, **roles):
        seen.update(xo=xo, mo=mo, metrics=metrics, roles=roles)
        return "result"

    monkeypatch.setattr(api, "_score", fake_score)
    return seen


def test_api_score_options_reach_metric_options(monkeypatch):
    seen = _capture_score(monkeypatch)
    assert genbench.score("a", "b", ["precision"], pr_k=4, dc_k=6, kid_subsets=3, weights_sha256="ab" * 32) == "result"
    assert seen["mo"].prdc_k_precision_recall == 4 and seen["mo"].prdc_k_density_coverage == 6
    assert seen["mo"].kid_subsets == 3 and seen["xo"].weights_sha256 == "ab" * 32
    genbench.score("a", "b", prdc_k_precision_recall=2)
    assert seen["mo"].prdc_k_precision_recall == 2
    with pytest.raises(ConfigError, match="both set prdc_k_precision_recall"):
        genbench.score("a", "b", pr_k=2, prdc_k_precision_recall=3)


def test_api_defaults_are_the_dataclasses_but_quiet(monkeypatch):
    seen = _capture_score(monkeypatch)
    genbench.score("a", "b")
    assert seen["mo"] == MetricOptions()
    assert seen["xo"] == ExtractOptions(progress=False)
    assert seen["xo"].progress is False  # the one API-specific default


def test_api_batch_size_default_follows_the_extractor(monkeypatch):
    seen = _capture_score(monkeypatch)
    genbench.score("a", "b", extractor="fmnist-cnn")
    assert seen["xo"].batch_size == default_batch_size("fmnist-cnn", "cpu") == 256
    genbench.score("a", "b")  # extractor not known yet: settled once chosen
    assert seen["xo"].for_extractor("inception-v3").batch_size == default_batch_size("inception-v3", "cpu")
    genbench.score("a", "b", batch_size=7)
    assert seen["xo"].for_extractor("fmnist-cnn").batch_size == 7


def test_batch_size_left_unset_can_be_settled_again():
    chosen = ExtractOptions().for_extractor("inception-v3")
    assert chosen.batch_size == 32
    assert chosen.for_extractor("fmnist-cnn").batch_size == 256  # still "not given"
    assert chosen.for_extractor("inception-v3") is chosen


@pytest.mark.parametrize("call", [
    lambda: genbench.score("a", "b", batch_sise=8),
    lambda: genbench.extract("a", batch_sise=8),
    lambda: genbench.compute_stats("a", batch_sise=8),
])
def test_unknown_api_keyword_is_a_config_error_with_a_suggestion(call):
    with pytest.raises(ConfigError) as info:
        call()
    message = str(info.value)
    assert "'batch_sise'" in message and "did you mean 'batch_size'" in message
    assert "valid keywords:" in message and "workers" in message


def test_extract_refuses_metric_options():
    with pytest.raises(ConfigError, match="unknown keyword 'pr_k'"):
        genbench.extract("a", pr_k=3)


def test_api_extract_runs_with_dataclass_defaults():
    images = make_images(12, seed=0)
    ff = genbench.extract(images, extractor="test-tiny", cache=False)
    assert ff.features.shape == (12, 16)
    stats, meta = genbench.compute_stats(images, extractor="test-tiny", cache=False, batch_size=5)
    assert stats.n == 12 and meta["extractor"] == "test-tiny"
    np.testing.assert_allclose(stats.mean(), ff.features.mean(0), rtol=1e-5, atol=1e-6)


def test_api_score_runs_end_to_end_with_pr_k():
    gen, ref = make_images(20, seed=1), make_images(20, seed=2, shift=0.1)
    result = genbench.score(gen, ref, ["precision"], extractor="test-tiny", cache=False, pr_k=2)
    assert result.provenance["metric_options"]["prdc_k_precision_recall"] == 2


def test_help_lists_the_keywords():
    for fn, classes in ((genbench.score, (ExtractOptions, MetricOptions)), (genbench.extract, (ExtractOptions,)),
                        (genbench.compute_stats, (ExtractOptions,))):
        doc = fn.__doc__ or ""
        for cls in classes:
            for f in option_fields(cls):
                assert f"{f.name}: " in doc, (fn.__name__, f.name)
        assert "progress: bool = False" in doc
    assert "(also ``pr_k``)" in (genbench.score.__doc__ or "")


# The verbs whose options come from config dataclasses beside ExtractOptions and MetricOptions: for each,
# (the verb, the dataclasses it draws on). Every parameter named like a field of one of them has its flag and
# default; a flag the verb wrote by hand with another default would fail here.
CONFIG_VERBS = [
    (("demo",), ("DemoOptions", "ExtractOptions", "MetricOptions")),
    (("leaderboard",), ("BoardOptions", "ExtractOptions", "MetricOptions")),
    (("ref", "build"), ("ExtractOptions",)),
    (("ref", "verify"), ("ExtractOptions",)),
    (("baselines", "sample"), ("SampleOptions", "ExtractOptions", "MetricOptions")),
    (("baselines", "spread"), ("SpreadOptions",)),
]


@pytest.mark.parametrize("verb, classes", CONFIG_VERBS)
def test_other_verbs_take_their_defaults_from_config(verb, classes):
    import genbench.config as config

    matched = 0
    for param in _params(*verb).values():  # the first dataclass (in the verb's order) with a field of that flag
        owner = next((f for cls in (getattr(config, name) for name in classes) for f in option_fields(cls)
                      if param_name(f) == param.name and f.metadata["flag"] in param.opts), None)
        if owner is not None:
            matched += 1
            assert _cli_default(owner, param) == owner.default, (verb, owner.name)
    assert matched >= 2, verb


def test_the_demo_and_board_defaults_are_the_dataclasses():
    import inspect

    from genbench.cli.demo import run_demo
    from genbench.config import BoardOptions, DemoOptions
    from genbench.leaderboard import score_rows

    run = inspect.signature(run_demo).parameters
    assert (run["reference"].default, run["samples"].default, run["batch_size"].default) == (
        DemoOptions().reference, DemoOptions().samples, DemoOptions().batch_size)
    assert inspect.signature(score_rows).parameters["batch_size"].default == BoardOptions().batch_size
