"""The catalogue of published references: complete, consistent with genbench's extractors, and up to date."""
from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genbench.errors import ConfigError, ReferenceStatsError
from genbench.features import canonical_preprocessing, extractor_names
from genbench.features.weights import INCEPTION_V3_WEIGHTS
from genbench.stats import catalogue as C

REPO = Path(__file__).resolve().parents[2]
CAT = C.load_catalogue()


def test_the_shipped_json_is_what_the_script_writes():
    res = subprocess.run([sys.executable, "scripts/make_catalogue.py", "--check"], cwd=REPO, capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_source_and_the_ids_users_write():
    ids = {e.id for e in CAT.entries}
    for needed in ("clean-fid/cifar10_legacy_tensorflow_train_32", "clean-fid/cifar10_clean_test_32",
                   "clean-fid/ffhq_clean_trainval70k_1024", "clean-fid/afhq_cat_clean_train_512_kid",
                   "ttur/fid_stats_cifar10_train", "ttur/fid_stats_imagenet_valid", "adm/VIRTUAL_imagenet256_labeled",
                   "adm/VIRTUAL_imagenet512", "adm/VIRTUAL_lsun_bedroom256", "edm/cifar10-32x32",
                   "edm/imagenet-64x64-baseline", "edm2/img512", "edm2/img64"):
        assert needed in ids, needed
    counts = {s: sum(e.source == s for e in CAT.entries) for s in ("clean-fid", "ttur", "adm", "edm", "edm2", "mar",
                                                                    "fractalgen")}
    # clean-fid: 19 (data set, resolution, split) rows, 3 modes each but 2 trainfull rows clean only; + KID, 5 x 3
    assert counts == {"clean-fid": 19 * 3 - 2 * 2 + 5 * 3, "ttur": 6, "adm": 7, "edm": 5, "edm2": 2,
                      "mar": 1, "fractalgen": 1}
    assert len(CAT.entries) == sum(counts.values())


def test_every_component_names_a_genbench_extractor_and_policy():
    known = set(extractor_names())
    for e in CAT.entries:
        assert e.covariance == "unbiased"  # all five sources use np.cov or /(N-1)
        for comp in e.components:
            assert comp.extractor in known, (e.id, comp.extractor)
            assert canonical_preprocessing(comp.extractor, comp.preprocessing) == comp.preprocessing, e.id
            if comp.extractor == "inception-v3":
                assert comp.weights_sha256 == INCEPTION_V3_WEIGHTS.sha256
            assert comp.packaging_line().startswith("reference: ") and comp.agreement


def test_cleanfid_modes_map_to_the_matching_policies():
    policy = {m: CAT.get(f"clean-fid/cifar10_{m}_train_32").components[0].preprocessing
              for m in ("clean", "legacy_tensorflow", "legacy_pytorch")}
    assert policy == {"clean": "pil-bicubic", "legacy_tensorflow": "tf1-bilinear", "legacy_pytorch": "torch-bilinear"}
    e = CAT.get("clean-fid/cifar10_legacy_tensorflow_train_32")
    assert e.url == "https://www.cs.cmu.edu/~clean-fid/stats/cifar10_legacy_tensorflow_train_32.npz"
    assert (e.n, e.resolution, e.split) == (50_000, 32, "train")


def test_what_a_protocol_needs_is_recorded():
    adm = CAT.get("adm/VIRTUAL_imagenet256_labeled")
    assert [c.name for c in adm.components] == ["fid", "spatial"]
    assert adm.component("spatial").layer == "spatial" and adm.component("spatial").keys == ("mu_s", "sigma_s")
    assert adm.component("spatial").feature_dim == 2023
    assert adm.images == {"key": "arr_0", "n": 10_000, "layout": "NHWC", "dtype": "uint8",
                          "use": "precision and recall (k=3, Inception pool_3)"}
    assert CAT.get("adm/VIRTUAL_imagenet512").images["n"] == 1_000
    edm2 = CAT.get("edm2/img512")
    assert [(c.name, c.extractor, c.feature_dim) for c in edm2.components] == [
        ("fid", "inception-v3", 2048), ("fd_dinov2", "dinov2-vit-l14", 1024)]
    assert edm2.components[1].weights_sha256 is None  # none published: nothing is claimed
    assert all(e.sha256 is None for e in CAT.entries)  # no owner publishes one: recorded at first download


def test_resolve_picks_the_component_by_extractor_or_suffix():
    assert C.resolve("fashion-mnist:train") is None
    entry, comp = C.resolve("edm2/img512")
    assert comp.name == "fid" and entry.store_id(comp) == "edm2/img512"
    assert C.resolve("edm2/img512", "dinov2-vit-l14")[1].name == "fd_dinov2"
    entry, comp = C.resolve("adm/VIRTUAL_imagenet64_labeled@spatial")
    assert entry.store_id(comp) == "adm/VIRTUAL_imagenet64_labeled@spatial"
    with pytest.raises(ConfigError, match="no component 'nope'"):
        C.resolve("adm/VIRTUAL_imagenet64_labeled@nope")
    with pytest.raises(ConfigError, match="did you mean.*cifar10_clean_train_32"):
        CAT.get("clean-fid/cifar10_clean_train_23")


def test_a_malformed_entry_is_named():
    raw = dataclasses.asdict(CAT.get("edm/cifar10-32x32"))
    raw["format"] = "mystery"
    with pytest.raises(ReferenceStatsError, match="edm/cifar10-32x32.*format 'mystery'"):
        C.parse_entry(raw)


def test_a_covariance_divided_by_n_is_converted_exactly_once(tmp_path):
    """For an entry that divides by N, the stored sigma is the /(N-1) covariance of the same features."""
    from genbench.stats.fetch import read_components

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 2048))
    biased = np.cov(x, rowvar=False, bias=True)
    buf = io.BytesIO()
    np.savez(buf, mu=x.mean(0), sigma=biased)
    path = tmp_path / "biased.npz"
    path.write_bytes(buf.getvalue())
    entry = dataclasses.replace(CAT.get("edm/cifar10-32x32"), covariance="biased", n=40)
    (got,) = read_components(entry, path)
    np.testing.assert_allclose(got.sigma, np.cov(x, rowvar=False), rtol=1e-12, atol=1e-15)
    assert "multiplied by N/(N-1) with N=40" in got.conversion
    unknown_n = dataclasses.replace(entry, n=None)
    with pytest.raises(ReferenceStatsError, match="needs N"):
        read_components(unknown_n, path)


def test_a_printed_fingerprint_is_compared_and_recorded():
    from genbench.stats.fetch import _Read, fingerprint_note

    entry = CAT.get("clean-fid/ffhq_clean_trainval70k_256")
    assert entry.fingerprint is not None and "clean-fid#27" in entry.fingerprint["source"]
    comp = entry.components[0]
    mu = np.full(2048, 618.9957 / 2048)
    sigma = np.full((2048, 2048), 12467.119923723967 / 2048**2)
    assert fingerprint_note(entry, _Read(comp, mu=mu, sigma=sigma)).startswith("matches")
    with pytest.warns(UserWarning, match="differs from the fingerprint"):
        assert fingerprint_note(entry, _Read(comp, mu=mu * 1.01, sigma=sigma)).startswith("differs")
    assert fingerprint_note(CAT.get("edm/cifar10-32x32"), _Read(comp, mu=mu, sigma=sigma)) is None
