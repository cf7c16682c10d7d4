"""The transform-sensitivity probe (genbench.probes.sensitivity) on the test-tiny extractor."""
from __future__ import annotations

import csv
import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import linalg

from genbench.config import ExtractOptions, MetricOptions
from genbench.errors import ConfigError
from genbench.features.base import EXTRACTORS
from genbench.probes.sensitivity import (
    SensitivityOptions,
    monotonicity,
    parse_strengths,
    run_sensitivity_probe,
    spearman_rho,
)
from genbench.sources.transforms import TRANSFORMS, TransformSpec
from tests.conftest import TinyExtractor, make_images

XO = ExtractOptions(extractor="test-tiny", cache=False, progress=False)
MO = MetricOptions(kid_subsets=5, kid_subset_size=50)



@pytest.fixture
def zigzag(monkeypatch):
    """Registers "test-zigzag", a transform whose damage goes up and down with the strength (brightness of 0.3
    on odd strengths only), for one test; the registry is restored afterwards, so no other test sees it."""
    spec = TransformSpec(
        "test-zigzag",
        lambda im, s, rng: np.clip(im.astype(np.int16) + (77 if int(s) % 2 else 0), 0, 255).astype(np.uint8),
        (0, 1, 2, 3), "odd strengths brighten")
    monkeypatch.setitem(TRANSFORMS._entries, spec.name, spec)  # removed again when the test ends
    return spec.name


class TinyResize(TinyExtractor):
    """test-tiny with two named preprocessing policies: area averaging (default) or nearest-neighbour pooling."""

    name = "test-tiny-resize"

    def __init__(self, preprocessing: str | None = None) -> None:
        super().__init__()
        if preprocessing not in (None, "avgpool8", "nearest8"):
            raise ConfigError(f"test-tiny-resize: unknown preprocessing {preprocessing!r}; expected avgpool8, nearest8")
        self.preprocessing = preprocessing or "avgpool8"

    def forward(self, images):
        if self.preprocessing == "avgpool8":
            return super().forward(images)
        x = torch.nn.functional.interpolate(images.float() / 255.0, size=8, mode="nearest").flatten(1)
        features = torch.relu(x @ self.weight.T)
        return {"features": features, "logits": features @ self.head.T}


if "test-tiny-resize" not in EXTRACTORS:
    EXTRACTORS.register("test-tiny-resize")(
        lambda weights=None, preprocessing=None, device="cpu": TinyResize(preprocessing).to(device))


@pytest.fixture(scope="module")
def data():
    return {"samples": make_images(120, seed=1), "reference": make_images(200, seed=0)}


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Independent FD: numpy moments and scipy's sqrtm."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # test-tiny's ReLU features give singular covariances
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def tiny(images_nhwc: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return TinyExtractor()(torch.from_numpy(np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2))))["features"].numpy()


# ----------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize("values, expected", [
    ([0, 1, 1, 3], (True, "increasing")),
    ([5, 4, 4, 0], (True, "decreasing")),
    ([1, 2, 1], (False, "none")),
    ([2, 2, 2], (False, "constant")),
    ([0, float("nan"), 2], (False, "none")),
])
def test_monotonicity(values, expected):
    assert monotonicity(values) == expected


def test_spearman_rho_closed_forms():
    assert spearman_rho([0.1, 0.5, 0.7, 3.0]) == pytest.approx(1.0)
    assert spearman_rho([4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks 1,3,2,4 against 1,2,3,4: rho = 1 - 6 * sum d^2 / (n (n^2 - 1)) = 1 - 6 * 2 / 60 = 0.8
    assert spearman_rho([1, 3, 2, 4]) == pytest.approx(0.8)
    assert np.isnan(spearman_rho([1, 1, 1]))


def test_parse_strengths():
    assert parse_strengths(["0,0.5,1"]) == {"*": (0.0, 0.5, 1.0)}
    assert parse_strengths(["jpeg=0,90,50", "shift=0,2"]) == {"jpeg": (0.0, 90.0, 50.0), "shift": (0.0, 2.0)}
    with pytest.raises(ConfigError, match="expected numbers"):
        parse_strengths(["blur=a,b"])
    with pytest.raises(ConfigError, match="unknown transform"):
        SensitivityOptions(transforms=("no-such",)).ladders()
    with pytest.raises(ConfigError, match="at least 2 strengths"):
        SensitivityOptions(transforms=("shift",), strengths={"shift": (1.0,)}).ladders()


# ----------------------------------------------------------------------------- the probe


def test_monotone_detection_on_a_synthetic_case_and_fd_checked_independently(data, zigzag):
    opts = SensitivityOptions(transforms=("brightness", "test-zigzag"), metrics=("fd", "kid"), max_samples=None,
                              strengths={"brightness": (0, 0.1, 0.2, 0.3)})
    report = run_sensitivity_probe(data["samples"], data["reference"], opts, XO, MO)
    doc = report.to_dict()
    assert doc["monotone"]["brightness"] == {"fd_tiny": True, "kid_tiny": True}
    assert doc["direction"]["brightness"]["fd_tiny"] == "increasing"
    assert doc["spearman_rho"]["brightness"]["fd_tiny"] == pytest.approx(1.0)
    assert doc["monotone"]["test-zigzag"] == {"fd_tiny": False, "kid_tiny": False}
    zig = [v for _, v in doc["curves"]["test-zigzag"]["fd_tiny"]]
    assert zig[1] > zig[0] and zig[2] < zig[1] and zig[2] == pytest.approx(zig[0])  # strength 2 is the identity
    # one point against an independent FD of directly computed features
    bright = np.clip(data["samples"].astype(np.int16) + round(255 * 0.2), 0, 255).astype(np.uint8)
    expected = frechet(tiny(bright), tiny(data["reference"]))
    assert doc["curves"]["brightness"]["fd_tiny"][2] == [0.2, pytest.approx(expected, rel=1e-4)]


def test_reference_and_untransformed_samples_are_extracted_once(data, monkeypatch):
    import genbench.evaluate as engine

    calls = []
    real = engine.extract_source

    def counting(source, extractor, options, role="generated", *args):
        calls.append(role)
        return real(source, extractor, options, role, *args)

    monkeypatch.setattr(engine, "extract_source", counting)  # every extraction of a prepared run goes through it
    opts = SensitivityOptions(transforms=("gaussian-blur", "shift"), metrics=("fd", "precision", "recall"),
                              strengths={"*": (0, 1, 2)}, max_samples=None)
    report = run_sensitivity_probe(data["samples"], data["reference"], opts, XO, MO)
    assert calls.count("reference") == 1 and calls.count("samples") == 1
    assert len(calls) == 2 + 2 * 2  # plus one extraction per (transform, strength > 0)
    # strength 0 is the same point for every transform
    assert report.values("gaussian-blur", "fd_tiny")[0] == report.values("shift", "fd_tiny")[0]
    # Each point's precision/recall belong to that point (the prdc registration memoises by array id). The
    # expected values use features extracted the way the probe extracts them (same batches): features computed
    # at another batch size differ in the last float32 bits, and a sample lying within that of a ball boundary
    # (this data has such samples at ~1e-5 relative) would then count differently on some CPUs.
    from genbench.api import extract
    from genbench.metrics.prdc import prdc
    from genbench.sources.arrays import ArraySource
    from genbench.sources.transforms import TransformedSource

    reference = extract(data["reference"], extractor="test-tiny", cache=False).features
    for transform in ("gaussian-blur", "shift"):
        for level, strength in ((1, 1.0), (2, 2.0)):
            moved = TransformedSource(ArraySource(data["samples"]), [(transform, strength)], seed=0)
            want = prdc(reference, extract(moved, extractor="test-tiny", cache=False).features)
            assert report.values(transform, "recall")[level] == want.recall
            assert report.values(transform, "precision")[level] == want.precision


def test_outputs_csv_and_png(data, tmp_path):
    opts = SensitivityOptions(transforms=("gaussian-noise",), metrics=("fd",), strengths={"*": (0, 16, 64)},
                              max_samples=60)
    report = run_sensitivity_probe(data["samples"], data["reference"], opts, XO, MO)
    written = report.write_outputs(tmp_path / "out")
    assert [p.name for p in written] == ["sensitivity.csv", "sensitivity_fd_tiny.png"]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "sensitivity.csv").read_text())))
    assert [(r["transform"], r["level"], r["strength"]) for r in rows] == [("gaussian-noise", "0", "0"),
                                                                           ("gaussian-noise", "1", "16"),
                                                                           ("gaussian-noise", "2", "64")]
    assert float(rows[1]["value"]) == report.values("gaussian-noise", "fd_tiny")[1]
    with Image.open(written[1]) as img:
        assert img.format == "PNG" and img.size[0] == 760  # one transform: one panel, as wide as the old plot
    assert report.to_dict()["provenance"]["inputs"]["samples"]["n"] == 60


def test_compare_preprocessing_reports_the_filter_shift(data):
    opts = SensitivityOptions(transforms=(), compare_preprocessing=("avgpool8", "nearest8"), max_samples=None)
    xo = ExtractOptions(extractor="test-tiny-resize", cache=False, progress=False)
    report = run_sensitivity_probe(data["samples"], data["reference"], opts, xo, MO)
    first, second = report.preprocessing
    assert first["fd_tiny_same_images_vs_avgpool8"] == pytest.approx(0.0, abs=1e-9)
    avg = tiny(data["samples"])
    with torch.no_grad():
        near = TinyResize("nearest8")(torch.from_numpy(data["samples"].transpose(0, 3, 1, 2).copy()))["features"].numpy()
        near_ref = TinyResize("nearest8")(torch.from_numpy(data["reference"].transpose(0, 3, 1, 2).copy()))["features"]
    assert second["fd_tiny_same_images_vs_avgpool8"] == pytest.approx(frechet(near, avg), rel=1e-4)
    assert second["fd_tiny_to_reference"] == pytest.approx(frechet(near, near_ref.numpy()), rel=1e-4)
    assert second["fd_tiny_shift_vs_avgpool8"] == pytest.approx(
        second["fd_tiny_to_reference"] - first["fd_tiny_to_reference"])
    with pytest.raises(ConfigError, match="unknown preprocessing"):
        run_sensitivity_probe(data["samples"], data["reference"],
                              SensitivityOptions(transforms=(), compare_preprocessing=("avgpool8", "bogus")), xo, MO)


def test_refusals(data, tmp_path):
    with pytest.raises(ConfigError, match="nothing to do"):
        run_sensitivity_probe(data["samples"], data["reference"], SensitivityOptions(transforms=()), XO, MO)
    with pytest.raises(ConfigError, match="unknown metric"):
        run_sensitivity_probe(data["samples"], data["reference"],
                              SensitivityOptions(transforms=("shift",), metrics=("nope",)), XO, MO)
    from genbench.api import compute_stats
    from genbench.stats.io import save_stats

    stats, meta = compute_stats(data["reference"], extractor="test-tiny", cache=False)
    save_stats(tmp_path / "ref.npz", stats, meta)
    with pytest.raises(ConfigError, match="need reference features"):
        run_sensitivity_probe(data["samples"], tmp_path / "ref.npz",
                              SensitivityOptions(transforms=("shift",), metrics=("kid",)), XO, MO)
    # FD alone works from a statistics file
    report = run_sensitivity_probe(data["samples"], tmp_path / "ref.npz",
                                   SensitivityOptions(transforms=("shift",), metrics=("fd",), strengths={"*": (0, 1)}),
                                   XO, MO)
    assert len(report.values("shift", "fd_tiny")) == 2


@pytest.mark.slow
def test_compare_preprocessing_on_the_inception_network_with_random_weights():
    """The Inception path end to end (its three resize policies) with seeded random weights standing in for the
    real ones, which cannot be downloaded here: the filter alone moves the features."""
    from genbench.features.inception import InceptionV3Extractor, random_state_dict

    state = random_state_dict(seed=3, calibration_size=299)  # O(1) activations at the network's input size
    if "test-inception-random" not in EXTRACTORS:
        EXTRACTORS.register("test-inception-random")(
            lambda weights=None, preprocessing=None, device="cpu": InceptionV3Extractor(
                state, "0" * 64, preprocessing, device=device, backend="torch"))
    xo = ExtractOptions(extractor="test-inception-random", cache=False, progress=False, batch_size=8)
    policies = ("tf1-bilinear", "torch-bilinear", "pil-bicubic")
    report = run_sensitivity_probe(make_images(8, seed=1, size=32), make_images(8, seed=2, size=32),
                                   SensitivityOptions(transforms=(), compare_preprocessing=policies, max_samples=None),
                                   xo, MO)
    rows = {r["preprocessing"]: r for r in report.preprocessing}
    assert list(rows) == list(policies)
    shifts = [rows[p]["fid_same_images_vs_tf1-bilinear"] for p in policies]
    assert abs(shifts[0]) < 1e-6 * min(shifts[1:])  # the same statistics against themselves
    assert min(shifts[1:]) > 0
    for policy in policies[1:]:
        assert rows[policy]["fid_shift_vs_tf1-bilinear"] == pytest.approx(
            rows[policy]["fid_to_reference"] - rows["tf1-bilinear"]["fid_to_reference"])
