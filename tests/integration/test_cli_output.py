"""Where output goes: results on stdout, progress and messages on stderr; -q; --json PATH|- everywhere;
clean-fid's preprocessing names as aliases; "did you mean"; unverified weights in the result."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from genbench.cli.app import main
from genbench.errors import ConfigError
from genbench.features.base import EXTRACTORS
from genbench.registry import Registry
from genbench.results.records import ScoreResult
from tests.conftest import TinyExtractor

SMALL = ["--extractor", "test-tiny", "--no-cache", "--metrics", "fd,is", "--is-splits", 2]


def run(*args, **kw):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, **kw)


@pytest.fixture
def small(tmp_path):
    from tests.conftest import make_images

    gen, ref = tmp_path / "gen.npy", tmp_path / "ref.npy"
    np.save(gen, make_images(24, seed=1, shift=0.1))
    np.save(ref, make_images(30, seed=0))
    return gen, ref


# ----------------------------------------------------------------------------- score


def test_score_table_on_stdout_and_quiet_never_silences_it(small):
    gen, ref = small
    res = run("score", gen, "--ref", ref, *SMALL)
    assert res.exit_code == 0, res.output
    assert "fd_tiny" in res.stdout and "extractor test-tiny" in res.stdout
    assert "fd_tiny" not in res.stderr
    quiet = run("score", gen, "--ref", ref, *SMALL, "-q")
    assert quiet.exit_code == 0, quiet.output
    assert "fd_tiny" in quiet.stdout and quiet.stderr == ""


def test_score_json_dash_replaces_the_table_on_stdout(small, tmp_path):
    gen, ref = small
    res = run("score", gen, "--ref", ref, *SMALL, "--json", "-")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)  # nothing but the JSON on stdout
    assert "fd_tiny" in doc["metrics"] and doc["provenance"]["weights_verified"] is True
    assert "fd_tiny" in res.stderr  # the table moved to stderr
    quiet = run("score", gen, "--ref", ref, *SMALL, "--json", "-", "-q")
    assert json.loads(quiet.stdout)["metrics"] == doc["metrics"] and quiet.stderr == ""
    out = tmp_path / "r.json"
    to_file = run("score", gen, "--ref", ref, *SMALL, "--json", out, "-q")
    assert "fd_tiny" in to_file.stdout and json.loads(out.read_text())["metrics"] == doc["metrics"]


def test_history_message_is_on_stderr_and_quiet_silences_it(small, tmp_path):
    gen, ref = small
    hist = tmp_path / "h.sqlite"
    res = run("score", gen, "--ref", ref, *SMALL, "--history", hist)
    assert "recorded as #1" in res.stderr and "recorded" not in res.stdout
    quiet = run("score", gen, "--ref", ref, *SMALL, "--history", hist, "-q")
    assert "recorded" not in quiet.output and "fd_tiny" in quiet.stdout


# ----------------------------------------------------------------------------- check


def test_check_verdicts_on_stdout_json_dash_and_quiet(small, tmp_path):
    gen, ref = small
    base = tmp_path / "base.json"
    assert run("score", gen, "--ref", ref, *SMALL, "--json", base, "-q").exit_code == 0
    res = run("check", base, "--baseline", base, "--max-increase", "fd_tiny=1")
    assert res.exit_code == 0, res.output
    assert "PASSED" in res.stdout and "PASSED" not in res.stderr
    as_json = run("check", base, "--baseline", base, "--max-increase", "fd_tiny=1", "--json", "-")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) and "PASSED" in as_json.stderr
    quiet = run("check", base, "--baseline", base, "--max-increase", "fd_tiny=1", "--json", "-", "-q")
    assert json.loads(quiet.stdout) and quiet.stderr == ""
    scored = run("check", gen, "--baseline", base, "--max-increase", "fd_tiny=1", "--ref", ref,
                 "--extractor", "test-tiny", "--no-cache", "-q")
    assert scored.exit_code == 0, scored.output
    assert "PASSED" in scored.stdout and scored.stderr == ""


# ----------------------------------------------------------------------------- probe modes


def test_probe_modes_summary_on_stdout_json_dash_and_quiet(tmp_path):
    from tests.unit.test_probes_modes import stacked_from_classes  # also registers test-brightness10

    classes = np.random.default_rng(0).integers(0, 2, size=(32, 3))
    path = tmp_path / "stacked.npy"
    np.save(path, stacked_from_classes(classes))
    base = ("probe", "modes", path, "--ref", "none", "--extractor", "test-brightness10", "--no-cache")
    res = run(*base, "-q")
    assert res.exit_code == 0, res.output
    assert "modes covered" in res.stdout and res.stderr == ""
    as_json = run(*base, "--json", "-")
    doc = json.loads(as_json.stdout)
    assert doc["n_modes"] == 1000 and "modes covered" in as_json.stderr
    quiet = run(*base, "--json", "-", "-q")
    assert json.loads(quiet.stdout)["modes_covered"] == doc["modes_covered"] and quiet.stderr == ""


# ----------------------------------------------------------------------------- listing verbs: --json PATH|-


def test_listing_verbs_take_json_path_or_dash_and_the_old_bare_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("GENBENCH_REFERENCE_STATS", str(tmp_path / "bundled"))
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    for verb in (("ref", "list"), ("cache", "info")):
        bare, dash = run(*verb, "--json"), run(*verb, "--json", "-")
        assert bare.exit_code == 0 and dash.exit_code == 0, dash.output
        assert json.loads(bare.stdout) == json.loads(dash.stdout)
        out = tmp_path / f"{verb[0]}.json"
        to_file = run(*verb, "--json", out)
        assert to_file.exit_code == 0, to_file.output
        assert json.loads(out.read_text()) == json.loads(dash.stdout)
        again = run(*verb, "--json", out)
        assert again.exit_code == 2 and "--overwrite" in again.stderr
        assert run(*verb, "--json", out, "--overwrite").exit_code == 0


def test_results_list_json_path_or_dash(small, tmp_path):
    gen, ref = small
    hist = tmp_path / "h.sqlite"
    assert run("score", gen, "--ref", ref, *SMALL, "--history", hist, "--name", "m1", "-q").exit_code == 0
    dash = run("results", "list", "--history", hist, "--json", "-")
    (record,) = json.loads(dash.stdout)
    assert "m1" in json.dumps(record) and "fd_tiny" in json.dumps(record)
    assert json.loads(run("results", "list", "--history", hist, "--json").stdout) == [record]
    out = tmp_path / "list.json"
    to_file = run("results", "list", "--history", hist, "--json", out)
    assert "m1" in to_file.stdout and json.loads(out.read_text()) == [record]


# ----------------------------------------------------------------------------- aliases and "did you mean"


def test_cleanfid_mode_names_are_aliases_recorded_canonically():
    from genbench.features.preprocess import PREPROCESSING, get_preprocessing

    for alias, name in (("clean", "pil-bicubic"), ("legacy_tensorflow", "tf1-bilinear"),
                        ("legacy_pytorch", "torch-bilinear")):
        assert get_preprocessing(alias).name == name and PREPROCESSING.canonical(alias) == name
        assert alias in PREPROCESSING and alias not in PREPROCESSING.names()
    assert "clean = pil-bicubic" in run("list").stdout


def test_ref_import_records_the_canonical_preprocessing(tmp_path, monkeypatch):
    monkeypatch.setenv("GENBENCH_REFERENCE_STATS", str(tmp_path / "bundled"))
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    stats = tmp_path / "other_tool.npz"
    x = np.random.default_rng(0).standard_normal((50, 4))
    np.savez(stats, mu=x.mean(0), sigma=np.cov(x, rowvar=False))
    res = run("ref", "import", stats, "--id", "mine", "--dataset", "cifar10", "--split", "train", "--extractor",
              "inception-v3", "--weights-sha256", "abc", "--layer", "pool3", "--preprocessing", "clean", "--n", 50, "-q")
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
    assert json.loads(run("ref", "show", "mine").stdout)["preprocessing"] == "pil-bicubic"


def test_registry_aliases_and_did_you_mean():
    reg: Registry[int] = Registry("widget", flag="--widget")
    reg.register("alpha-net", aliases=("alpha",))(1)
    reg.register("beta-net")(2)
    assert reg.get("alpha") == 1 and reg.canonical("alpha") == "alpha-net" and reg.names() == ["alpha-net", "beta-net"]
    with pytest.raises(ConfigError, match=r"did you mean 'beta-net'\?"):
        reg.get("beta-nte")
    with pytest.raises(ConfigError) as caught:
        reg.get("zzz")
    assert "did you mean" not in str(caught.value) and "alpha-net, beta-net" in str(caught.value)
    with pytest.raises(ValueError):
        reg.alias("alpha", "beta-net")


def test_mistyped_names_get_a_suggestion(small, tmp_path):
    gen, ref = small
    res = run("score", gen, "--ref", ref, "--extractor", "test-tinny", "-q")
    assert res.exit_code == 2 and "did you mean 'test-tiny'" in res.stderr
    res = run("stats", ref, "-o", tmp_path / "s.npz", "--preprocessing", "tf1-bilnear", "-q")
    assert res.exit_code == 2 and "did you mean 'tf1-bilinear'" in res.stderr
    res = run("ref", "show", "fashion-mnist:trian")  # the bundled references
    assert res.exit_code == 2 and "did you mean 'fashion-mnist:train'" in res.stderr


def test_reference_ids_get_a_suggestion(monkeypatch):
    from genbench.errors import ReferenceStatsError
    from genbench.stats import reference as refstats

    entry = type("E", (), {"id": "cifar10-train_inception-v3", "dataset": "cifar10", "split": "train"})()
    monkeypatch.setattr(refstats, "all_entries", lambda: [entry])
    with pytest.raises(ReferenceStatsError, match=r"did you mean 'cifar10:train'"):
        refstats.get_reference("cifar10:trian")
    with pytest.raises(ReferenceStatsError, match=r"did you mean 'cifar10-train_inception-v3'"):
        refstats.get_reference("cifar10-train_inception-v4")


# ----------------------------------------------------------------------------- numbers and unverified weights


def test_a_spread_that_is_zero_by_construction_prints_as_zero():
    table = ScoreResult({"is": {"mean": 3.0, "std": 1.08e-14}, "kid": {"mean": 0.5, "std": 0.0123}},
                        {"weights_verified": True}).format_table()
    assert "3 ± 0\n" in table + "\n" and "e-14" not in table and "0.5 ± 0.0123" in table
    assert "unverified" not in table


class _UnverifiedTiny(TinyExtractor):
    weights_verified = False


if "test-tiny-unverified" not in EXTRACTORS:
    EXTRACTORS.register("test-tiny-unverified")(lambda weights=None, preprocessing=None, device="cpu": _UnverifiedTiny())


def test_unverified_weights_are_recorded_and_shown(small):
    gen, ref = small
    args = ("score", gen, "--ref", ref, "--extractor", "test-tiny-unverified", "--no-cache", "--metrics", "fd", "-q")
    res = run(*args)
    assert res.exit_code == 0, res.output
    assert "unverified weights" in res.stdout
    doc = json.loads(run(*args, "--json", "-").stdout)
    assert doc["provenance"]["weights_verified"] is False
