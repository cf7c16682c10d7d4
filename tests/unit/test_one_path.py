"""One path from inputs to numbers: the compatibility policy, the extractor rule and offline feature scoring,
the same for every verb (score, check, the probes, the streaming Evaluator, extract/stats, ref build)."""
from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import linalg

import genbench.evaluate as evaluate
from genbench.cli import main
from genbench.config import ExtractOptions, MetricOptions
from genbench.errors import ReferenceStatsError
from genbench.stats.compatibility import IDENTITY_FIELDS, Side, check_compatible
from genbench.stats.feature_stats import FeatureStats
from genbench.stats.io import FeatureFile, save_features, save_stats
from tests.conftest import needs_fashion_mnist

DIM = 16
BASE = {"extractor": "test-tiny", "weights_sha256": "a" * 64, "layer": "proj", "preprocessing": "avgpool8",
        "precision": "float32", "feature_dim": DIM}
OTHER = {"extractor": "fmnist-cnn", "weights_sha256": "b" * 64, "layer": "penultimate", "preprocessing": "x",
         "precision": "bf16", "feature_dim": 17, "protocol": "edm2"}


def _features(seed: int, n: int = 60, dim: int = DIM, shift: float = 0.0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=(n, dim)) + shift).astype(np.float32)


def _feature_file(path, feats, meta, logits=None):
    save_features(path, FeatureFile(feats, logits, [f"{i}.png" for i in range(len(feats))], None, meta))
    return str(path)


def _fd(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance of two feature sets' Gaussians, in closed form with scipy (independent of genbench)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(s1 @ s2).real
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


def _plain_npz(path, feats):
    np.savez(path, features=feats)  # a bare feature array: no metadata
    return str(path)


# ----------------------------------------------------------------------------- the policy


@pytest.mark.parametrize("field", IDENTITY_FIELDS)
def test_each_identity_field_is_refused_with_one_message(field):
    base = {**BASE, "protocol": "adm"}  # made under a paper protocol (genbench.protocols)
    other = {**base, field: OTHER[field]}
    with pytest.raises(ReferenceStatsError) as caught:
        check_compatible([Side("generated input g.npz", other)], Side("reference input r.npz (--ref)", base))
    message = str(caught.value)
    assert f"{field}={OTHER[field]!r}" in message and f"{field}={base[field]!r}" in message
    assert message.startswith("generated input g.npz was built with") and "(--ref)" in message


def test_missing_metadata_is_allowed_with_a_warning_naming_the_fields():
    with pytest.warns(UserWarning, match=r"provenance unchecked.*plain\.npz \(extractor, weights_sha256"):
        unchecked = check_compatible([Side("plain.npz", None)], Side("reference", BASE))
    assert unchecked == {"plain.npz": list(IDENTITY_FIELDS)}
    # A file that does not record its precision was float32 (every file before precision was recorded was).
    without = {k: v for k, v in BASE.items() if k != "precision"}
    assert check_compatible([Side("old.npz", without)], Side("reference", BASE)) == {}
    with pytest.raises(ReferenceStatsError, match="precision='float32'"):
        check_compatible([Side("old.npz", without)], Side("reference", {**BASE, "precision": "bf16"}))


@pytest.mark.parametrize("field", ["extractor", "weights_sha256", "layer", "preprocessing", "precision"])
def test_score_check_and_probe_refuse_the_same_mix_with_the_same_message(tmp_path, field):
    ref = _feature_file(tmp_path / "ref.npz", _features(0), BASE)
    gen = _feature_file(tmp_path / "gen.npz", _features(1), {**BASE, field: OTHER[field]})
    expected = f"{field}={OTHER[field]!r}"
    with pytest.raises(ReferenceStatsError) as scored:
        evaluate.score(gen, ref, ["fd"])
    assert expected in str(scored.value)
    reason = re.escape(str(scored.value).split(" was built with ", 1)[1])
    runner = CliRunner()
    for args in (["score", gen, "--ref", ref, "--metrics", "fd"], ["check", gen, "--ref", ref, "--max", "fd_tiny=1e9"]):
        done = runner.invoke(main, args)
        assert done.exit_code == 2, (args, done.output)
        assert re.search(reason, done.output.replace("\n", " ")) or expected in done.output, done.output
    from genbench.probes.memorization import run_memorization_probe

    train = _feature_file(tmp_path / "train.npz", _features(2), BASE)
    test = _feature_file(tmp_path / "test.npz", _features(3), BASE)
    with pytest.raises(ReferenceStatsError) as probed:
        run_memorization_probe(gen, train, test)
    assert expected in str(probed.value) and "cannot be compared" in str(probed.value)


def test_feature_width_must_match(tmp_path):
    ref = _feature_file(tmp_path / "ref.npz", _features(0), BASE)
    gen = _plain_npz(tmp_path / "gen.npz", _features(1, dim=DIM + 1))
    with pytest.raises(ReferenceStatsError, match="17-dimensional"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluate.score(gen, ref, ["fd"])


# ----------------------------------------------------------------------------- offline feature scoring


@pytest.fixture
def no_network(monkeypatch):
    """Building any extractor fails: what scores here needs no network and no weights."""
    def refuse(*args, **kwargs):
        raise AssertionError("an extractor was built")

    monkeypatch.setattr(evaluate, "build_extractor", refuse)
    import genbench.features as features

    monkeypatch.setattr(features, "build_extractor", refuse)


def test_plain_feature_files_score_offline_with_a_warning(tmp_path, no_network):
    g, r = _features(1, shift=0.5), _features(0)
    gen, ref = _plain_npz(tmp_path / "g.npz", g), _plain_npz(tmp_path / "r.npz", r)
    with pytest.warns(UserWarning, match="provenance unchecked"):
        result = evaluate.score(gen, ref, metric_options=MetricOptions(kid_subset_size=50, kid_subsets=5))
    assert set(result.metrics) == {"fid", "kid"}  # no logits: no IS; the default names are Inception's
    assert result.value("fid") == pytest.approx(_fd(g, r), rel=1e-6)  # independent computation
    assert set(result.provenance["unchecked"]) == {f"generated input {gen}", f"reference input {ref} (--ref)"}
    assert result.provenance["extractor"] is None


def test_feature_file_against_statistics_file_scores_offline(tmp_path, no_network):
    g, r = _features(1), _features(0, n=80, shift=0.3)
    fmnist = {**BASE, "extractor": "fmnist-cnn"}  # a bundled extractor's metric names are known without its weights
    gen = _feature_file(tmp_path / "g.npz", g, fmnist)
    save_stats(tmp_path / "r_stats.npz", FeatureStats.from_features(r), fmnist)
    result = evaluate.score(gen, str(tmp_path / "r_stats.npz"), ["fd_fmnist"])
    assert result.value("fd_fmnist") == pytest.approx(_fd(g, r), rel=1e-6)
    assert "unchecked" not in result.provenance and result.provenance["extractor"] == "fmnist-cnn"
    assert result.provenance["precision"] == "float32"


def test_genbench_stats_of_a_feature_file_needs_no_network(tmp_path, no_network):
    feats = _features(4)
    path = _feature_file(tmp_path / "f.npz", feats, {**BASE, "source": {"kind": "array"}})
    done = CliRunner().invoke(main, ["stats", path, "-o", str(tmp_path / "s.npz"), "-q"])
    assert done.exit_code == 0, done.output
    with np.load(tmp_path / "s.npz", allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        np.testing.assert_allclose(data["mu"], feats.mean(0, dtype=np.float64), rtol=1e-6)
    assert meta["extractor"] == "test-tiny"  # the file's own, not a default


# ----------------------------------------------------------------------------- the extractor rule


def test_choose_extractor_order(tmp_path):
    loaded = evaluate.open_input(_feature_file(tmp_path / "f.npz", _features(0), BASE), "reference")
    assert isinstance(loaded, evaluate.Evaluated)
    pick = evaluate.choose_extractor
    assert pick(ExtractOptions(extractor="inception-v3"), [loaded], ["fashion-mnist:train"])[0] == "inception-v3"
    assert pick(ExtractOptions(), [loaded], ["fashion-mnist:train"]) == ("test-tiny", "avgpool8")
    assert pick(ExtractOptions(), [], ["fashion-mnist:train"])[0] == "fmnist-cnn"
    assert pick(ExtractOptions(), [], ["stacked-fashion-mnist:test"])[0] == "fmnist-cnn"
    assert pick(ExtractOptions(), [], ["cifar10:train", str(tmp_path)])[0] == "inception-v3"


@needs_fashion_mnist  # the data set is opened before the extractor is chosen
@pytest.mark.parametrize("verb", ["extract", "stats"])
def test_extract_and_stats_follow_the_data_set_default(tmp_path, monkeypatch, verb):
    """`genbench extract|stats fashion-mnist:...` with no --extractor uses fmnist-cnn, as probe and ref build do."""
    chosen = []

    def spy(name, *args, **kwargs):
        chosen.append(name)
        raise ReferenceStatsError("stop here")  # the choice is what is tested, not the extraction

    monkeypatch.setattr(evaluate, "_build_for", spy)
    done = CliRunner().invoke(main, [verb, "fashion-mnist:test", "-o", str(tmp_path / "out.npz"), "-q"])
    assert chosen == ["fmnist-cnn"], done.output


def _tiny_identity() -> dict:
    """The identity the test-tiny extractor gives its extractions (precision included)."""
    from genbench.features import build_extractor

    return {**build_extractor("test-tiny").identity().to_dict(), "precision": "float32"}


@pytest.mark.parametrize("field", ["weights_sha256", "layer", "preprocessing", "precision"])
def test_images_against_a_file_of_other_settings_same_message_in_score_probe_and_evaluator(tmp_path, field):
    """Images extracted in this run against statistics made otherwise: score, the sensitivity probe and the
    streaming Evaluator refuse with the one message, naming the field and both values."""
    from genbench.evaluator import Evaluator
    from genbench.probes.sensitivity import SensitivityOptions, run_sensitivity_probe
    from tests.conftest import make_images

    identity = _tiny_identity()
    other = {**identity, field: OTHER[field]}
    save_stats(tmp_path / "ref.npz", FeatureStats.from_features(_features(0)), other)
    ref = str(tmp_path / "ref.npz")
    images = make_images(12, seed=1)
    expected = f"{field}={OTHER[field]!r}"
    tail = "features and statistics made under different settings cannot be compared"
    messages = []
    with pytest.raises(ReferenceStatsError) as scored:
        evaluate.score(images, ref, ["fd_tiny"], ExtractOptions(extractor="test-tiny", progress=False))
    messages.append(str(scored.value))
    with pytest.raises(ReferenceStatsError) as probed:
        run_sensitivity_probe(images, ref, SensitivityOptions(metrics=("fd",), transforms=("gaussian-blur",),
                                                 strengths={"gaussian-blur": (1.0, 2.0)}, max_samples=None),
                              ExtractOptions(extractor="test-tiny", progress=False))
    messages.append(str(probed.value))
    with pytest.raises(ReferenceStatsError) as streamed:
        Evaluator(ref, metrics=["fd_tiny"], extractor="test-tiny")
    messages.append(str(streamed.value))
    for message in messages:
        assert expected in message and f"{field}={identity[field]!r}" in message and tail in message, message
    assert len({m.split(" was built with ")[1].split("; features")[0] for m in messages}) == 1, messages


@needs_fashion_mnist
def test_ref_build_follows_the_data_set_default(tmp_path, monkeypatch):
    chosen = []

    def spy(name, *args, **kwargs):
        chosen.append(name)
        raise ReferenceStatsError("stop here")

    monkeypatch.setattr(evaluate, "_build_for", spy)
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path))
    CliRunner().invoke(main, ["ref", "build", "fashion-mnist:test", "-q"])
    assert chosen == ["fmnist-cnn"]


def test_statistics_without_a_count_record_n_as_unknown(tmp_path):
    """A plain mu/sigma file (pytorch-fid, TTUR, a published reference) states no n: provenance says None, never the
    placeholder the sums are rebuilt with."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(60, 4)) + 0.5
    ref = tmp_path / "plain.npz"
    np.savez(ref, mu=b.mean(0), sigma=np.cov(b, rowvar=False))
    gen = tmp_path / "gen.npz"
    np.savez(gen, features=a.astype(np.float32))
    with pytest.warns(UserWarning):
        result = evaluate.score(str(gen), str(ref), ["fd"])
    assert result.provenance["inputs"]["reference"]["n"] is None
    assert result.provenance["inputs"]["generated"]["n"] == 50
    diff = a.mean(0) - b.mean(0)
    from scipy import linalg

    s1, s2 = np.cov(a.astype(np.float32).astype(np.float64), rowvar=False), np.cov(b, rowvar=False)
    want = diff @ diff + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert result.value("fid") == pytest.approx(want, rel=1e-6)  # no extractor recorded: the default, Inception
