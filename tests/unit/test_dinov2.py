"""DINOv2 extractors: registration, weights handling, identity, and refusals across spaces, policies and sizes."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from genbench.cli.app import main
from genbench.config import ExtractOptions, MetricOptions
from genbench.errors import ConfigError, ReferenceStatsError, WeightsError
from genbench.evaluate import score
from genbench.features import canonical_preprocessing, extractor_names, static_metric_names
from genbench.features.dinov2 import ARCHS, build_dinov2, random_state_dict
from genbench.stats.feature_stats import FeatureStats
from genbench.stats.io import save_stats


@pytest.fixture(autouse=True)
def _private(tmp_path, monkeypatch):
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    for var in ("GENBENCH_DINOV2_WEIGHTS", "GENBENCH_DINOV2_WEIGHTS_SHA256"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def vits_file(tmp_path_factory) -> tuple[str, str]:
    path = tmp_path_factory.mktemp("w") / "dinov2_vits14_random.pth"
    torch.save(random_state_dict("dinov2-vit-s14", 0), path)
    return str(path), hashlib.sha256(path.read_bytes()).hexdigest()


def _images(n: int, size: int = 28, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def test_registered_with_their_dimensions_and_metric_names():
    names = extractor_names()
    for name, dim in (("dinov2-vit-s14", 384), ("dinov2-vit-b14", 768), ("dinov2-vit-l14", 1024),
                      ("dinov2-vit-g14", 1536)):
        assert name in names and ARCHS[name].embed_dim == dim
        assert static_metric_names(name).fd == "fd_dinov2" and static_metric_names(name).kid == "kid_dinov2"
    assert ARCHS["dinov2-vit-g14"].ffn_hidden == 4096  # the official fused SwiGLU width


def test_policy_names_are_scoped_and_recorded_canonically():
    assert canonical_preprocessing("dinov2-vit-l14", "pil-bicubic") == "dinov2-pil-bicubic"
    assert canonical_preprocessing("dinov2-vit-l14", "edm2") == "dinov2-torch-bicubic"
    assert canonical_preprocessing("dinov2-vit-l14", "torch-fidelity") == "dinov2-tf1-bilinear"
    assert canonical_preprocessing("inception-v3", "pil-bicubic") == "pil-bicubic"  # clean-fid's, unchanged
    with pytest.raises(ConfigError, match="torch-bilinear"):  # an Inception-only policy is not a DINOv2 one
        canonical_preprocessing("dinov2-vit-l14", "torch-bilinear")


def test_identity_records_policy_and_weights_sha256(vits_file):
    path, sha = vits_file
    ex = build_dinov2("dinov2-vit-s14", weights=path, preprocessing="torch-bicubic")
    ident = ex.identity().to_dict()
    assert ident == {"extractor": "dinov2-vit-s14", "layer": "cls-norm", "preprocessing": "dinov2-torch-bicubic",
                     "weights_sha256": sha, "feature_dim": 384}
    assert ex.weights_verified is False  # nobody publishes a sha256 for the DINOv2 files
    out = ex(torch.from_numpy(_images(2)).permute(0, 3, 1, 2))
    assert set(out) == {"features"} and out["features"].shape == (2, 384)


def test_weights_from_environment_and_a_sha256_pin(vits_file, monkeypatch):
    path, sha = vits_file
    monkeypatch.setenv("GENBENCH_DINOV2_WEIGHTS", path)
    assert build_dinov2("dinov2-vit-s14").weights_sha256 == sha
    pinned = build_dinov2("dinov2-vit-s14", weights_sha256=sha.upper())
    assert pinned.weights_verified is True
    with pytest.raises(WeightsError, match=rf"has sha256 {sha}, expected {'0' * 64} \(pinned by --weights-sha256\)"):
        build_dinov2("dinov2-vit-s14", weights_sha256="0" * 64)
    monkeypatch.setenv("GENBENCH_DINOV2_WEIGHTS_SHA256", "1" * 64)
    with pytest.raises(WeightsError, match="pinned by GENBENCH_DINOV2_WEIGHTS_SHA256"):
        build_dinov2("dinov2-vit-s14")
    with pytest.raises(ConfigError, match="64 hexadecimal digits"):
        build_dinov2("dinov2-vit-s14", weights_sha256="abc")


def test_offline_without_the_file_says_how_to_provide_it(monkeypatch):
    import urllib.request

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(WeightsError) as info:
        build_dinov2("dinov2-vit-l14")
    text = str(info.value)
    assert "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth" in text
    assert "GENBENCH_DINOV2_WEIGHTS" in text and "no sha256 is published" in text
    with pytest.raises(WeightsError, match="downloads are off"):
        build_dinov2("dinov2-vit-l14", allow_download=False)


def test_wrong_architecture_names_the_file_and_the_expected_shapes(vits_file):
    path, _ = vits_file
    with pytest.raises(WeightsError) as info:
        build_dinov2("dinov2-vit-b14", weights=path)
    text = str(info.value)
    assert path in text and "does not fit dinov2-vit-b14" in text
    assert "pos_embed (1, 1370, 384) (expected (1, 1370, 768))" in text
    assert "looks like dinov2-vit-s14" in text


def test_a_file_that_is_no_state_dict_is_refused(tmp_path):
    bad = tmp_path / "notes.pth"
    bad.write_text("not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read weights file"):
        build_dinov2("dinov2-vit-s14", weights=str(bad))


def _stats_file(tmp_path, name: str, identity: dict) -> str:
    feats = np.random.default_rng(1).normal(size=(30, identity["feature_dim"]))
    path = tmp_path / name
    save_stats(path, FeatureStats.from_features(feats), {**identity, "layer": identity.get("layer", "cls-norm")})
    return str(path)


@pytest.mark.parametrize("stats_identity,field", [
    ({"extractor": "inception-v3", "preprocessing": "tf1-bilinear", "feature_dim": 2048, "layer": "pool3"},
     "extractor"),
    ({"extractor": "dinov2-vit-s14", "preprocessing": "dinov2-tf1-bilinear", "feature_dim": 384}, "preprocessing"),
    ({"extractor": "dinov2-vit-l14", "preprocessing": "dinov2-pil-bicubic", "feature_dim": 1024}, "extractor"),
])
def test_statistics_from_another_space_policy_or_size_are_refused(tmp_path, vits_file, stats_identity, field):
    path, sha = vits_file
    ref = _stats_file(tmp_path, "ref.npz", {**stats_identity, "weights_sha256": sha})
    xo = ExtractOptions(extractor="dinov2-vit-s14", preprocessing="pil-bicubic", weights=path, progress=False,
                        cache=False)
    with pytest.raises(ReferenceStatsError, match=rf"built with {field}=") as info:
        score(_images(4), ref, ["fd"], xo)
    assert "cannot be compared" in str(info.value)
    np.save(tmp_path / "gen.npy", _images(4))
    result = CliRunner().invoke(main, ["score", str(tmp_path / "gen.npy"), "--ref", ref, "--extractor",
                                       "dinov2-vit-s14", "--preprocessing", "pil-bicubic", "--weights", path,
                                       "--metrics", "fd", "-q", "--no-cache"])
    assert result.exit_code == 2 and f"built with {field}=" in result.output


def test_score_in_dinov2_space_names_the_metrics(tmp_path, vits_file):
    path, sha = vits_file
    xo = ExtractOptions(extractor="dinov2-vit-s14", weights=path, progress=False, cache=False)
    from genbench.metrics import prdc_registration  # noqa: F401

    result = score(_images(6, seed=1), _images(6, seed=2), ["fd", "kid", "precision", "recall"], xo,
                   MetricOptions(kid_subset_size=3, kid_subsets=4))
    doc = json.loads(result.to_json())
    assert {"fd_dinov2", "kid_dinov2", "precision", "recall"} <= set(doc["metrics"])
    assert doc["provenance"]["extractor"] == "dinov2-vit-s14"
    assert doc["provenance"]["preprocessing"] == "dinov2-pil-bicubic"
    assert doc["provenance"]["weights_sha256"] == sha and doc["provenance"]["weights_verified"] is False


def test_ref_build_in_dinov2_space_and_score_against_it(tmp_path, monkeypatch, vits_file):
    import gzip

    from genbench.sources import datasets
    from genbench.stats.reference import get_reference

    path, sha = vits_file
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(3)
    for split, n in (("train", 8), ("t10k", 10)):
        for kind, array, code in (("images", rng.integers(0, 256, size=(n, 28, 28)), 3), ("labels", np.arange(n) % 10, 1)):
            header = bytes([0, 0, 0x08, code]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
            with gzip.open(data / f"{split}-{kind}-idx{code}-ubyte.gz", "wb") as fh:
                fh.write(header + array.astype(np.uint8).tobytes())
    monkeypatch.setenv("GENBENCH_DATA", str(data))
    monkeypatch.setenv("GENBENCH_REFERENCE_STATS", str(tmp_path / "bundled"))
    datasets.clear_cache()
    res = CliRunner().invoke(main, ["ref", "build", "fashion-mnist:test", "--extractor", "dinov2-vit-s14",
                                    "--weights", path, "--weights-sha256", sha, "--preprocessing", "torch-bicubic",
                                    "-q"])
    assert res.exit_code == 0, res.output
    entry = get_reference("fashion-mnist-test_dinov2-vit-s14_dinov2-torch-bicubic")  # an explicit policy is in the id
    assert (entry.n, entry.preprocessing, entry.weights_sha256) == (10, "dinov2-torch-bicubic", sha)
    xo = ExtractOptions(extractor="dinov2-vit-s14", weights=path, progress=False, cache=False)
    with pytest.raises(ReferenceStatsError, match="built with preprocessing='dinov2-torch-bicubic'"):
        score(_images(3), "fashion-mnist-test_dinov2-vit-s14_dinov2-torch-bicubic", ["fd"],
              ExtractOptions(extractor="dinov2-vit-s14", weights=path, preprocessing="pil-bicubic", progress=False,
                             cache=False))
    result = score(_images(3), "fashion-mnist-test_dinov2-vit-s14_dinov2-torch-bicubic", ["fd"], xo)  # follows the reference's policy
    assert result.provenance["preprocessing"] == "dinov2-torch-bicubic" and result.metrics["fd_dinov2"]["value"] > 0
    datasets.clear_cache()
